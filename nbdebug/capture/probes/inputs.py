"""Training inputs: per-feature ranges of the first batches (point 5), the batch sizes
and order fingerprints (points 6, 16), the batch size each BatchNorm gets (point 12)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from ...stats import Unsupported, feature_moments, guard
from ...stats.summary import check_supported
from .. import structure
from ..audits import AuditRecorder
from ..models import ModelEntry
from .base import Probe

#: training batches whose per-feature input moments are kept
INPUT_BATCHES = 20


#: the inputs held for their moments, in bytes at most, before they are summed up
WAITING_BYTES = 2**20


class _Inputs:
    """The input moments of one model, added across its first training batches: the
    inputs wait (references, each with its version) and are summed up a run of one shape
    at a time (one concatenation, one set of reductions)."""

    def __init__(self) -> None:
        self.moments: torch.Tensor | None = None
        self.batches = 0
        self.dtype: str | None = None
        self.ndim: int | None = None
        self.waiting: list[tuple[torch.Tensor, int]] = []
        self.bytes = 0

    def wait(self, x: torch.Tensor) -> None:
        v = x.detach()
        self.waiting.append((v, v._version))
        self.bytes += v.numel() * v.element_size()
        if self.bytes >= WAITING_BYTES or self.batches + len(self.waiting) >= INPUT_BATCHES:
            self.settle()

    def settle(self) -> None:
        """Add the waiting inputs' moments (one changed in place since is left out)."""
        waiting, self.waiting, self.bytes = self.waiting, [], 0
        run: list[torch.Tensor] = []
        for v, version in waiting:
            if v._version != version:
                continue
            if run and (v.shape[1:] != run[0].shape[1:] or v.dtype != run[0].dtype
                        or v.device != run[0].device):
                self._add(run)
                run = []
            run.append(v)
        if run:
            self._add(run)

    def _add(self, run: list[torch.Tensor]) -> None:
        m = add_moments(self.moments, run[0] if len(run) == 1 else torch.cat(run))
        if m is not None:
            self.moments = m
            self.batches += len(run)


class InputProbe(Probe):
    STEADY = frozenset({"train_input"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.audit = AuditRecorder(ctx.obs, ctx.pending)
        self._inputs: dict[int, _Inputs] = {}

    def train_input(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = structure.first_tensor(args)
        if x is None:
            return
        self._record(entry, x)
        ctx = self.ctx
        loader = ctx.loader
        self.audit.model_input(id(entry), x, ctx.step, None if loader is None
                               else ctx.epoch_batches.get(id(loader)))

    def steady_inputs(self, entry: ModelEntry, module: nn.Module,
                      items: structure.SpanInputs) -> None:
        loader = self.ctx.loader
        batches = None if loader is None else self.ctx.epoch_batches.get(id(loader))
        xs = items.tensors()
        acc = self._inputs.get(id(entry))
        if acc is None or acc.batches < INPUT_BATCHES:     # (later ones: nothing to add)
            for _, x in xs:
                self._record(entry, x)
            if (acc := self._inputs.get(id(entry))) is not None:
                acc.settle()
        self.audit.model_inputs(id(entry), xs, batches)

    def layer_input(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.audit.module_input(entry.names, module, args)

    def _record(self, entry: ModelEntry, x: torch.Tensor) -> None:
        ctx = self.ctx
        acc = self._inputs.get(id(entry))
        if acc is None:
            acc = self._inputs[id(entry)] = _Inputs()
        if not ctx.full and acc.batches >= INPUT_BATCHES:
            return                              # a lean step after the first batches
        if acc.dtype is None:
            acc.dtype = str(x.dtype).replace("torch.", "")
            acc.ndim = x.dim()
        if ctx.full and x.is_floating_point() and x.layout == torch.strided:
            # (on lean steps the model's output guards the step, and a replay of the
            # batch tells a NaN that came with the data)
            ctx.cur.guard("<input>", guard(x))
        if (acc.batches + len(acc.waiting) >= INPUT_BATCHES or not x.is_floating_point()
                or x.dim() < 2):
            return
        try:
            check_supported(x)
        except Unsupported:
            return
        acc.wait(x)

    def closing(self) -> None:
        for acc in self._inputs.values():
            acc.settle()

    def finish(self) -> None:
        self.closing()
        inputs = self.ctx.obs.extra.setdefault(keys.INPUTS, {})
        for entry in self.ctx.models:
            acc = self._inputs.get(id(entry))
            if acc is None:
                continue
            if acc.moments is not None:
                inputs[entry.info.name] = input_summary(
                    acc.moments.cpu().numpy(), acc.batches, acc.dtype)
                inputs[entry.info.name]["ndim"] = acc.ndim
            elif acc.dtype is not None:
                inputs[entry.info.name] = {"dtype": acc.dtype}


def add_moments(acc: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """``acc`` plus the per-feature moments of ``x`` (sequences: features last); None
    when ``x`` cannot be summarised or its features differ from ``acc``'s."""
    v = x.reshape(-1, x.shape[-1]) if x.dim() == 3 else x
    try:
        m = feature_moments(v)
    except Unsupported:
        return None
    if acc is None:
        return m
    if acc.shape != m.shape:
        return None
    return torch.stack([acc[0] + m[0], acc[1] + m[1], acc[2] + m[2],
                        torch.minimum(acc[3], m[3]), torch.maximum(acc[4], m[4])])


def input_summary(m: np.ndarray, batches: int, dtype: str | None) -> dict[str, Any]:
    count, s, sq, lo, hi = m
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        mean = s / np.maximum(count, 1)
        var = np.maximum(sq / np.maximum(count, 1) - mean * mean, 0.0)
    return {"dtype": dtype, "batches": batches, "features": int(m.shape[1]),
            "mean": mean.tolist(), "std": np.sqrt(var).tolist(),
            "min": lo.tolist(), "max": hi.tolist()}
