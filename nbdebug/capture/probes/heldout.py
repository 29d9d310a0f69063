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
        #: a held-out output with no batch labels (tensors, not a loader): scored when a
        #: loss call gets it with its targets
        self._pending: tuple[torch.Tensor, str, int] | None = None
        self._rounds: dict[str, tuple[int, int]] = {}  # held-out tensors -> (step, round)

    def eval_forward(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...],
                     output: Any) -> None:
        entry.info.eval_forwards += 1
        loader = self.ctx.loader
        held_out = loader is not None and loader.role != "train"
        if loader is not None and held_out:
            loader.eval_passes += 1
            self._inputs(loader, structure.first_tensor(args))
        out = structure.first_tensor(output)
        if out is None or not out.is_floating_point():
            return
        y = self.ctx.labels
        if loader is not None and y is not None and (held_out or self.ctx.batch_fresh):
            self._score(loader.name, loader.epochs, out, y)
            return
        x = structure.first_tensor(args)
        name = self.ctx.name_of(x, "held-out tensors") if x is not None else "held-out tensors"
        self._pending = (out, name, self.ctx.step)

    def eval_loss(self, fn: str, input: torch.Tensor, target: Any) -> None:
        """A loss computed outside training: the targets of the pending held-out output."""
        pending, self._pending = self._pending, None
        if pending is None or not isinstance(target, torch.Tensor):
            return
        out, name, step = pending
        if input is not out and (input.numel() != out.numel() or input.dim() == 0
                                 or input.shape[0] != out.shape[0]):
            return
        last, rnd = self._rounds.get(name, (-1, 0))
        if last != step:                          # a new held-out pass: a new round
            rnd += 1
            self._rounds[name] = (step, rnd)
        self._score(name, rnd, input if input is not out else out, target, fn)

    def _score(self, name: str, rnd: int, out: torch.Tensor, y: torch.Tensor,
               fn: str | None = None) -> None:
        """Accuracy and loss of one held-out batch: class logits, one logit (or probability)
        for a binary task, or a regression's squared error."""
        if self.ctx.class_labels(out, y) is not None:
            logits = out.detach().float()
            value = torch.stack([(logits.argmax(1) == y).sum().float(),
                                 ORIGINAL["cross_entropy"](logits, y, reduction="sum")])
            self._add(name, rnd, value, float(y.shape[0]))
            return
        binary = self._binary(fn)
        if (binary is not None and y.numel() == out.numel() and out.dim() >= 1
                and out.shape[0] == y.shape[0] and y.device == out.device
                and (out.dim() == 1 or out.shape[-1] == 1)):
            p, t = out.detach().float().reshape(-1), y.detach().float().reshape(-1)
            logits = p if binary else torch.logit(p.clamp(1e-6, 1 - 1e-6))
            value = torch.stack([((logits > 0) == (t > 0.5)).sum().float(),
                                 ORIGINAL["binary_cross_entropy_with_logits"](
                                     logits, t, reduction="sum")])
            self._add(name, rnd, value, float(t.numel()))
            return
        self._regression(out, y, name, rnd)

    def _binary(self, fn: str | None) -> bool | None:
        """True: the output is a logit; False: a probability; None: not a binary task."""
        names = {fn} if fn else {c.fn for c in self.ctx.obs.losses}
        if "binary_cross_entropy_with_logits" in names:
            return True
        return False if "binary_cross_entropy" in names else None

    def _add(self, name: str, rnd: int, value: torch.Tensor, n: float) -> None:
        acc = self._eval.setdefault((name, rnd), [0.0, 0.0, 0.0, float(self.ctx.step)])

        def sink(step: int, arr: np.ndarray) -> None:
            acc[0] += float(arr[0])
            acc[1] += float(arr[1])
            acc[2] += n
        self.ctx.put(value, sink)

    def _regression(self, out: torch.Tensor, y: torch.Tensor, name: str, rnd: int) -> None:
        """Held-out squared error, and the targets' spread (the error of predicting the mean)."""
        if (not y.is_floating_point() or y.device != out.device
                or y.numel() != out.numel() or y.dim() == 0 or y.shape[0] != out.shape[0]):
            return
        p, t = out.detach().float().reshape(-1), y.detach().float().reshape(-1)
        value = torch.stack([((p - t) ** 2).sum(), t.sum(), (t * t).sum()])
        acc = self._eval_reg.setdefault((name, rnd),
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
        current.update({name: rnd for name, (_, rnd) in self._rounds.items()})
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
