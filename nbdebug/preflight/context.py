"""What the pre-flight experiments work on: copies of the user's objects, never the objects.

``Context`` holds the real model and optimizer (read, never stepped), the training batch
already drawn (the model's inputs and the loss target) and how the loss is computed.
``Sandbox`` gives the experiments what they may change: a deep copy of the model, a
fresh optimizer, the RNG states saved and restored around them.
"""

from __future__ import annotations

import copy
import inspect
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capture.structure import first_tensor

#: losses whose value at init has a known expectation for a model that knows nothing
CLASSIFICATION_LOSSES = ("cross_entropy", "nll_loss")
BINARY_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits")


class Skip(Exception):
    """An experiment cannot run on this cell; the message says why (one line)."""


class TooFew(Skip):
    """An experiment needs more samples than the first batch holds: it can wait for the
    batches of the next steps (their samples are gathered, the model kept as at init)."""

    def __init__(self, message: str, needed: int) -> None:
        super().__init__(message)
        self.needed = needed


@dataclass
class Batch:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.target.shape[0])

    def rows(self, index: torch.Tensor, target: torch.Tensor | None = None) -> Batch:
        """The samples ``index`` of this batch (every tensor whose first dim is the batch's)."""
        n = self.size

        def pick(v: Any) -> Any:
            if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n:
                return v[index.to(v.device)]
            return v
        return Batch(tuple(pick(a) for a in self.args),
                     {k: pick(v) for k, v in self.kwargs.items()},
                     pick(self.target if target is None else target))

    def fits(self, other: Batch) -> bool:
        """``other`` can be stacked below this batch: same arguments, same sample shapes."""
        if len(other.args) != len(self.args) or other.kwargs.keys() != self.kwargs.keys():
            return False
        pairs = [*zip(self.args, other.args), (self.target, other.target),
                 *((v, other.kwargs[k]) for k, v in self.kwargs.items())]
        for a, b in pairs:
            if isinstance(a, torch.Tensor) != isinstance(b, torch.Tensor):
                return False
            if isinstance(a, torch.Tensor) and (a.shape[1:] != b.shape[1:] or a.dtype != b.dtype
                                                or a.device != b.device or not a.dim()):
                return False
        return True

    @staticmethod
    def cat(batches: list[Batch]) -> Batch:
        """Batches that ``fits`` each other as one batch (their samples one after another)."""
        first = batches[0]

        def join(values: list[Any]) -> Any:
            return torch.cat(values) if isinstance(values[0], torch.Tensor) else values[0]
        return Batch(tuple(join([b.args[i] for b in batches]) for i in range(len(first.args))),
                     {k: join([b.kwargs[k] for b in batches]) for k in first.kwargs},
                     torch.cat([b.target for b in batches]))

    def zeroed(self) -> Batch:
        """The same batch with every floating input set to 0 and integer inputs to 0."""
        def zero(v: Any) -> Any:
            return torch.zeros_like(v) if isinstance(v, torch.Tensor) else v
        return Batch(tuple(zero(a) for a in self.args),
                     {k: zero(v) for k, v in self.kwargs.items()}, self.target)


@dataclass
class LossSpec:
    name: str                         # "cross_entropy", "mse_loss", ...
    fn: Callable[..., torch.Tensor]   # the original torch function
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: the user applied log_softmax to the (N, C) output before the loss
    log_softmax: bool = False

    def __call__(self, output: Any, target: torch.Tensor) -> torch.Tensor:
        t = first_tensor(output)
        if t is None:
            raise Skip("the model's output holds no tensor")
        if self.log_softmax:
            t = torch.log_softmax(t, dim=1)
        loss = self.fn(t, target, **self.kwargs)
        if loss.dim():
            loss = loss.float().mean()
        if self.kwargs.get("reduction") == "sum":     # back to the mean the expectation is of
            per = target.shape[0] if self.name in CLASSIFICATION_LOSSES else target.numel()
            loss = loss / max(int(per), 1)
        return loss


@dataclass
class Context:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: list[Batch]
    loss: LossSpec
    device: torch.device
    budget_s: float
    model_name: str = "model"
    #: loss value the real training computed on the first batch (its own call)
    seen_loss: float | None = None
    notes: list[str] = field(default_factory=list)
    deadline: float = 0.0
    #: shape and last autograd op of the tensor the loss was computed on at the first step
    out_shape: tuple[int, ...] | None = None
    loss_input_kind: str | None = None
    #: results of earlier experiments that later ones reuse (the overfit curve)
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.deadline:
            self.deadline = time.perf_counter() + self.budget_s

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    @property
    def batch(self) -> Batch:
        return self.batches[0]

    @property
    def lr(self) -> float | None:
        lrs = [g.get("lr") for g in self.optimizer.param_groups]
        vals = [float(v) for v in lrs if isinstance(v, (int, float))]
        return max(vals) if vals else None

    @property
    def scheduled(self) -> bool:
        """An lr scheduler is attached (it writes ``initial_lr`` into the groups)."""
        return any("initial_lr" in g for g in self.optimizer.param_groups)

    @property
    def classes(self) -> int | None:
        """Number of classes of an index-target classification loss, else None."""
        if self.loss.name not in CLASSIFICATION_LOSSES or self.batch.target.is_floating_point():
            return None
        return None if self.out_shape is None or len(self.out_shape) < 2 else self.out_shape[1]

    def output_matches(self, output: Any) -> bool:
        """The loss input at the first step was this model output (same shape, same op)."""
        t = first_tensor(output)
        if t is None or self.out_shape is None or tuple(t.shape) != self.out_shape:
            return False
        if self.loss_input_kind == "LogSoftmaxBackward0" and t.dim() == 2 and (
                grad_kind(t) != self.loss_input_kind):
            self.loss.log_softmax = True          # F.log_softmax(model(x), 1), then the loss
            return True
        return self.loss_input_kind is None or grad_kind(t) == self.loss_input_kind


def grad_kind(t: Any) -> str | None:
    """The autograd op that made ``t`` ("AddmmBackward0"), or None."""
    fn = getattr(t, "grad_fn", None)
    return None if fn is None else type(fn).__name__


def original(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The torch function under nbdebug's (or anyone's) wrapper."""
    return inspect.unwrap(fn)


def loss_spec(name: str, kwargs: dict[str, Any]) -> LossSpec:
    return LossSpec(name, original(getattr(F, name)), dict(kwargs))


# -- the sandbox --------------------------------------------------------------------
def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy with no gradients (``Skip`` when the model does not copy)."""
    try:
        twin = copy.deepcopy(model)
    except Exception as exc:
        raise Skip(f"the model could not be deep-copied ({type(exc).__name__}: "
                   f"{str(exc)[:120]}); pre-flight runs on copies only") from None
    for p in twin.parameters():
        p.grad = None
    return twin


#: optimizer hyperparameters that cannot be given to a fresh optimizer's constructor
_NOT_ARGS = ("params", "initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum",
             "swa_lr")


def fresh_optimizer(like: torch.optim.Optimizer, params: list[torch.Tensor],
                    lr: float | None = None) -> torch.optim.Optimizer:
    """An optimizer of the user's class with the first group's hyperparameters."""
    group = like.param_groups[0]
    cls = type(like)
    if needs_closure(like):
        raise Skip(f"{cls.__name__}.step needs a closure (the loss re-evaluated by the "
                   "optimizer); pre-flight trains copies with plain steps")
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in group.items() if k not in _NOT_ARGS and k in accepted}
    if lr is not None:
        kwargs["lr"] = lr
    try:
        return cls(params, **kwargs)
    except Exception as exc:
        raise Skip(f"a fresh {cls.__name__} could not be made ({type(exc).__name__}: "
                   f"{str(exc)[:120]})") from None


def needs_closure(opt: torch.optim.Optimizer) -> bool:
    """The optimizer's step must be given a closure that recomputes the loss (LBFGS)."""
    closure = inspect.signature(type(opt).step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def safe_optimizer(params: list[torch.Tensor], lr: float = 2e-3) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


@contextmanager
def rng_kept(device: torch.device) -> Iterator[None]:
    """torch (CPU and CUDA), numpy and ``random`` states restored on the way out."""
    devices = [device.index or 0] if device.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def forward_loss(model: nn.Module, batch: Batch, loss: LossSpec,
                 target: torch.Tensor | None = None) -> torch.Tensor:
    out = model(*batch.args, **batch.kwargs)
    return loss(out, batch.target if target is None else target)


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, batch: Batch, loss: LossSpec,
                steps: int, ctx: Context, target: torch.Tensor | None = None,
                lrs: list[float] | None = None, stop: Callable[[list[float]], bool] | None = None,
                held: Callable[[], float] | None = None) -> tuple[list[float], list[float]]:
    """Train ``model`` on ``batch`` for up to ``steps`` steps; (losses, held-out losses).

    Stops early when the budget runs out, the loss is not finite, or ``stop(losses)``."""
    losses: list[float] = []
    helds: list[float] = []
    for i in range(steps):
        if ctx.left() <= 0:
            break
        if lrs is not None:
            for g in opt.param_groups:
                g["lr"] = lrs[i]
        value = forward_loss(model, batch, loss, target)
        opt.zero_grad(set_to_none=True)
        v = float(value.detach())
        losses.append(v)
        if not np.isfinite(v):
            break
        value.backward()
        opt.step()
        if held is not None:
            helds.append(held())
        if stop is not None and stop(losses):
            break
    return losses, helds
