"""Observations: what capture saw, as plain data (no torch), for the checks to read.

Every check reads only these classes, so each one can be unit-tested with hand-made
Observations and no training. Capture fills them; numbers are Python floats/ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ParamInfo:
    name: str                       # "net.0.weight"
    shape: tuple[int, ...]
    requires_grad: bool = True
    in_optimizer: bool = True
    # summary at the first training step (before any update); None when not computed
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    absmax: float | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass
class ModuleInfo:
    name: str                       # qualified name with the model's variable name: "net.0"
    type: str                       # class name: "Linear"
    leaf: bool = True
    attrs: dict[str, Any] = field(default_factory=dict)  # bias, p, num_features, ...


@dataclass
class ModelInfo:
    name: str                       # the user's variable name, or "model0"
    type: str
    modules: list[ModuleInfo] = field(default_factory=list)    # registration order
    params: list[ParamInfo] = field(default_factory=list)
    exec_order: list[str] = field(default_factory=list)        # leaf modules, first training pass
    training_forwards: int = 0
    eval_forwards: int = 0
    output_kind: str | None = None  # "tensor", "tuple", "dict", ...


@dataclass
class GroupInfo:
    index: int
    lr: float | None
    weight_decay: float = 0.0
    momentum: float | None = None
    nesterov: bool | None = None
    betas: tuple[float, float] | None = None
    params: list[str] = field(default_factory=list)            # names (model names if known)
    param_ndims: list[int] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerInfo:
    name: str                       # variable name, or "optimizer0"
    type: str                       # "SGD"
    groups: list[GroupInfo] = field(default_factory=list)
    steps: int = 0
    foreign_params: int = 0         # params held that belong to no watched model


@dataclass
class LoaderInfo:
    name: str
    role: str = "unknown"           # "train" | "eval" | "unknown"
    kind: str = "DataLoader"
    sampler: str | None = None      # class name of the sampler
    shuffled: bool | None = None
    batch_size: int | None = None
    drop_last: bool | None = None
    dataset_size: int | None = None
    epochs: int = 0                 # iterations started
    batches: int = 0                # batches drawn
    train_steps: int = 0            # optimizer steps taken on its batches
    eval_passes: int = 0


@dataclass
class LossCall:
    """One kind of loss seen in training (aggregated over the calls)."""
    fn: str                         # "cross_entropy", "kl_div", ... or the backward node name
    calls: int = 0
    reduction: str | None = None
    input_shape: tuple[int, ...] | None = None
    input_chain: list[str] = field(default_factory=list)   # grad_fn names feeding the input
    input_min: float | None = None
    input_max: float | None = None
    target_min: float | None = None
    target_max: float | None = None
    target_is_index: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class NanEvent:
    step: int
    phase: str                      # "input" | "forward" | "loss" | "backward"
    where: str | None               # module or parameter name
    kind: str = "nan"               # "nan" | "inf" | "nan/inf"
    detail: dict[str, Any] = field(default_factory=dict)


#: points a timeline keeps at most (then it keeps every other one, and so on)
SERIES_LIMIT = 2048


def _series_limit() -> int:
    return SERIES_LIMIT


@dataclass
class Series:
    """A bounded host timeline: at most ``limit`` points, decimated by two when full."""
    steps: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    columns: list[str] | None = None
    limit: int = field(default_factory=_series_limit)
    stride: int = 1
    _seen: int = 0

    def add(self, step: int, value: Any) -> None:
        self._seen += 1
        if (self._seen - 1) % self.stride:
            return
        self.steps.append(step)
        self.values.append(value)
        if len(self.steps) >= self.limit:
            self.steps = self.steps[::2]
            self.values = self.values[::2]
            self.stride *= 2

    def extend(self, steps: list[int], values: list[Any]) -> None:
        """``add`` of each (step, value) in order, a slice at a time: the points ``add``
        would keep, decimated where it would decimate."""
        i, n = 0, len(steps)
        while i < n:
            first = i + (-self._seen) % self.stride     # the next point kept
            if first >= n:
                self._seen += n - i
                return
            room = self.limit - len(self.steps)         # points kept until it decimates
            stop = min(n, first + room * self.stride)
            self.steps.extend(steps[first:stop:self.stride])
            self.values.extend(values[first:stop:self.stride])
            if len(self.steps) < self.limit:
                self._seen += n - i
                return
            last = first + (room - 1) * self.stride       # the point that filled it
            self._seen += last + 1 - i
            self.steps, self.values = self.steps[::2], self.values[::2]
            self.stride *= 2
            i = last + 1

    def __len__(self) -> int:
        return len(self.steps)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": list(self.steps), "values": list(self.values)}
        if self.columns is not None:
            out["columns"] = list(self.columns)
        return out


@dataclass
class Observations:
    models: list[ModelInfo] = field(default_factory=list)
    optimizers: list[OptimizerInfo] = field(default_factory=list)
    loaders: list[LoaderInfo] = field(default_factory=list)
    losses: list[LossCall] = field(default_factory=list)
    timelines: dict[str, Series] = field(default_factory=dict)
    nan: NanEvent | None = None
    steps: int = 0
    backward_calls: int = 0
    epochs: int = 0
    seconds: float = 0.0
    every: int = 1
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: counters and facts for the dynamics checks: zero_grad_calls, clip_calls,
    #: clip_max_norm, steps_seen, steps_in_eval_mode, eval_passes_in_train_mode, ...
    dynamics: dict[str, Any] = field(default_factory=dict)
    #: per held-out loader: input summary (features, mean, std, min, max, batches)
    eval_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # before-training audits (capture/audits.py)
    #: BatchNorm module name -> {batch size reaching it in training mode: forwards}
    batchnorm_batches: dict[str, dict[int, int]] = field(default_factory=dict)
    #: batch size of the root model's training inputs -> forwards
    train_batch_sizes: dict[int, int] = field(default_factory=dict)
    #: one fingerprint per training input batch, in order: [size, sum, abs sum, first row]
    input_fingerprints: list[list[float]] = field(default_factory=list)
    #: pre-flight experiments (--preflight): results per experiment, "ran", "skipped"
    #: (experiment -> why), "seconds", "step"; empty when pre-flight did not run
    preflight: dict[str, Any] = field(default_factory=dict)

    def series(self, name: str) -> Series:
        s = self.timelines.get(name)
        if s is None:
            s = self.timelines[name] = Series()
        return s

    def loss_values(self) -> list[float]:
        return list(self.timelines["loss"].values) if "loss" in self.timelines else []

    @property
    def train_loaders(self) -> list[LoaderInfo]:
        return [ld for ld in self.loaders if ld.role == "train"]

    @property
    def trained(self) -> bool:
        return self.steps > 0 or self.backward_calls > 0
