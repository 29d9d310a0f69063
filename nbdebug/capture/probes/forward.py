"""Forward statistics: each layer's output summary on sampled steps, the NaN guard of
the outputs on every step, the parameters at the first step (points 1, 17), the leaves'
execution order, and the training accuracy of sampled batches."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from ...stats import SUMMARY, Unsupported, guard, summarize, summary_row
from .. import structure
from ..models import ModelEntry
from .base import Probe

#: samples behind one point of the training accuracy (``keys.ACC_SAMPLES``): on smaller
#: batches a sample's accuracy is completed by the next steps' (light samples), else
#: batches of two would give points of 0, 0.5 or 1
ACC_SAMPLES = keys.ACC_SAMPLES


class ForwardProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._ordering: ModelEntry | None = None    # the model whose first pass is running
        self._fresh = False
        #: the last tensor summarised (a weak reference), its version (an in-place
        #: ReLU returns its input changed) and its summary's row: a Sequential's output
        #: is its last layer's, summarised once
        self._summarized: tuple[Any, int, list[torch.Tensor]] = (_nothing, -1, [])
        #: the training accuracy's open point: correct answers (on the device), samples
        self._acc: tuple[torch.Tensor, int] | None = None

    def first_forward(self, entry: ModelEntry, module: nn.Module) -> None:
        self._ordering, self._fresh = entry, True
        self._record_init(entry, module)

    def train_input(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self._fresh:                       # the first pass's own start
            self._fresh = False
        else:                                 # a later pass: the first one has ended
            self._ordering = None

    def layer_output(self, entry: ModelEntry, module: nn.Module, name: str, t: torch.Tensor,
                     root: bool) -> None:
        ctx = self.ctx
        parts = None
        if ctx.sampled:
            parts = self._put_summary(keys.OUTPUT if root else keys.ACT + name, t)
        if id(module) not in entry.unguarded:
            cur = ctx.cur
            if t is not cur.last_guarded:     # a Sequential's output is its last layer's
                try:                          # (the summary's shifted sum is the guard)
                    value = guard(t) if parts is None else parts[1]
                except Exception:
                    return
                cur.guard(entry.labels[id(module)], value)
                cur.last_guarded = t
        if root:
            self._ordering = None
            if ctx.sampled:
                self._train_accuracy(t)
        elif self._ordering is entry and ctx.full:
            entry.info.exec_order.append(name)

    def light_output(self, entry: ModelEntry, module: nn.Module, name: str, t: torch.Tensor,
                     root: bool) -> None:
        if root:
            self._train_accuracy(t)

    def _put_summary(self, key: str, t: torch.Tensor) -> list[torch.Tensor] | None:
        """Hold the summary of ``t`` for the ``key`` timeline; the parts, or None."""
        t = getattr(t, "_local_tensor", t)      # a DTensor output: this rank's part
        seen, version, row = self._summarized
        if seen() is not t or version != t._version:
            try:
                parts = summarize(t)
            except Unsupported as exc:
                self.ctx.note(f"{key}: statistics skipped ({exc})")
                return None
            # a row of 0-d values: the flush stacks a window's rows in one operation (a
            # stack here would cost 8 us a layer on a CPU, the flush's share of it 2)
            # (the pivot, a view of ``t``, is copied: the value must not follow ``t``'s
            # storage, nor keep it)
            row = [parts[0].clone(), *parts[1:]]
            self._summarized = (weakref.ref(t), t._version, row)
        series = self.ctx.series(key)
        series.columns = list(SUMMARY)
        n = t.numel()
        self.ctx.put(row, lambda step, arr: series.add(step, summary_row(arr, n)))
        return row

    def _record_init(self, entry: ModelEntry, module: nn.Module) -> None:
        by_name = {p.name: p for p in entry.info.params}
        for pname, p in module.named_parameters():
            info = by_name.get(structure.qualify(entry.info.name, pname))
            if info is None or isinstance(p, nn.parameter.UninitializedParameter):
                continue
            if hasattr(p, "device_mesh"):
                continue          # a DTensor (FSDP, tensor parallel): this rank holds a shard
            try:
                value = torch.stack(summarize(p))
            except Unsupported as exc:
                self.ctx.note(f"{info.name}: initial statistics skipped ({exc})")
                continue

            def sink(step: int, arr: np.ndarray, info: Any = info, n: int = p.numel()) -> None:
                info.mean, info.std, info.min, info.max, info.absmax = summary_row(
                    arr, n)[:5]
            self.ctx.put(value, sink)

    def _train_accuracy(self, out: torch.Tensor) -> None:
        ctx = self.ctx
        y = ctx.class_labels(out) if ctx.batch_fresh else None
        if y is None:               # (no labels, or those of a batch before this step's)
            return
        correct = (out.argmax(1) == y).sum()      # (integer results: no graph to detach)
        n = int(y.shape[0])
        if self._acc is not None:
            correct, n = correct + self._acc[0], n + self._acc[1]
        if n < ACC_SAMPLES:         # a small batch: the next steps complete the point
            self._acc = (correct, n)
            ctx.light_more = True
            return
        self._acc = None
        self._put_accuracy(correct, n)

    def _put_accuracy(self, correct: torch.Tensor, n: int) -> None:
        series = self.ctx.series(keys.TRAIN_ACC)
        self.ctx.put(correct / n, lambda s, a: series.add(s, float(a)))

    def closing(self) -> None:
        if self._acc is not None:   # (the run ended before the point was complete)
            self._put_accuracy(*self._acc)
            self._acc = None


def _nothing() -> None:
    return None
