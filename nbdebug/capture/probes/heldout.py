"""Held-out passes: accuracy and loss (or squared error against the mean's) of every
forward outside training, per loader and round (points 10, 11, 19), and the input ranges
of each held-out loader (point 19)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from ...observations import LoaderInfo
from .. import structure
from ..models import ModelEntry
from .base import Probe
from .inputs import add_moments, input_summary
from .losses import ORIGINAL

#: held-out batches per loader whose input moments are kept (bounded memory and time)
EVAL_INPUT_BATCHES = 20


class HeldoutProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._eval: dict[tuple[str, int], list[float]] = {}
        self._eval_reg: dict[tuple[str, int], list[float]] = {}
        self._moments: dict[str, list[Any]] = {}      # loader -> [moments, batches]

    def eval_forward(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...],
                     output: Any) -> None:
        entry.info.eval_forwards += 1
        loader = self.ctx.loader
        if loader is not None and loader.role != "train":
            loader.eval_passes += 1
            self._inputs(loader, structure.first_tensor(args))
        out = structure.first_tensor(output)
        if out is None or not out.is_floating_point() or loader is None:
            return
        y = self.ctx.class_labels(out)
        if y is None:
            self._regression(out, loader)
            return
        logits = out.detach().float()
        value = torch.stack([(logits.argmax(1) == y).sum().float(),
                             ORIGINAL["cross_entropy"](logits, y, reduction="sum")])
        acc = self._eval.setdefault((loader.name, loader.epochs),
                                    [0.0, 0.0, 0.0, float(self.ctx.step)])
        n = float(y.shape[0])

        def sink(step: int, arr: np.ndarray) -> None:
            acc[0] += float(arr[0])
            acc[1] += float(arr[1])
            acc[2] += n
        self.ctx.put(value, sink)

    def _regression(self, out: torch.Tensor, loader: LoaderInfo) -> None:
        """Held-out squared error, and the targets' spread (the error of predicting the mean)."""
        y = self.ctx.labels
        if (y is None or not y.is_floating_point() or y.device != out.device
                or y.numel() != out.numel() or y.dim() == 0 or y.shape[0] != out.shape[0]):
            return
        p, t = out.detach().float().reshape(-1), y.detach().float().reshape(-1)
        value = torch.stack([((p - t) ** 2).sum(), t.sum(), (t * t).sum()])
        acc = self._eval_reg.setdefault((loader.name, loader.epochs),
                                        [0.0, 0.0, 0.0, 0.0, float(self.ctx.step)])
        n = float(t.numel())

        def sink(step: int, arr: np.ndarray) -> None:
            for i in range(3):
                acc[i] += float(arr[i])
            acc[3] += n
        self.ctx.put(value, sink)

    def _inputs(self, loader: LoaderInfo, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            return
        acc = self._moments.setdefault(loader.name, [None, 0])
        if acc[1] >= EVAL_INPUT_BATCHES or not x.is_floating_point() or x.dim() < 2:
            return
        m = add_moments(acc[0], x)
        if m is not None:
            acc[0] = m
            acc[1] += 1

    def flush(self) -> None:
        self._close_rounds()
        #: held-out rounds still open (the closed ones are in the eval/ timelines): the
        #: live plots
        self.ctx.obs.extra[keys.EVAL_RUNNING] = [
            (name, int(a[3]), a[1] / a[2], a[0] / a[2])
            for (name, _), a in self._eval.items() if a[2]]

    def finish(self) -> None:
        self._close_rounds(everything=True)
        for name, (moments, batches) in self._moments.items():
            if moments is not None:
                self.ctx.obs.eval_inputs[name] = input_summary(
                    moments.cpu().numpy(), batches, None)

    def _close_rounds(self, everything: bool = False) -> None:
        """Move finished held-out rounds into their bounded timelines: a round ends when its
        loader starts the next one (or the run ends). Memory stays flat however many
        rounds a run makes."""
        current = {info.name: info.epochs for info in self.ctx.obs.loaders}
        obs = self.ctx.obs
        for key in sorted(self._eval_reg):
            name, rnd = key
            if everything or rnd < current.get(name, rnd + 1):
                sq, tot, tot_sq, n, step = self._eval_reg.pop(key)
                if n:
                    mean = tot / n
                    obs.series(keys.HELDOUT_MSE + name).add(int(step), {
                        "round": rnd, "mse": sq / n,
                        "baseline": max(tot_sq / n - mean * mean, 0.0), "n": n})
        for key in sorted(self._eval):
            name, rnd = key
            if everything or rnd < current.get(name, rnd + 1):
                correct, loss_sum, count, step = self._eval.pop(key)
                if count:
                    obs.series(keys.EVAL + name).add(int(step), {
                        "round": rnd, "acc": correct / count, "loss": loss_sum / count,
                        "n": count})
