"""Activations on sampled steps: per-unit "ever active" masks of ReLU layers over a
window of steps (dead units) and the saturated share of sigmoid/tanh outputs ("stuck")."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from ..models import ModelEntry
from .base import Probe

#: ReLU-like modules whose units can die (output exactly 0 for every input)
RELU_TYPES = (nn.ReLU, nn.ReLU6)
#: the modules a light sample hooks (``sampling.LIGHT``): the ones this probe reads
LIGHT_TYPES = (*RELU_TYPES, nn.Tanh, nn.Sigmoid)
#: |tanh| above this counts as saturated (its gradient 1 - y^2 is below 0.02)
TANH_SATURATED = 0.99
#: sigmoid above this or below 1 - this counts as saturated (gradient below 0.01)
SIGMOID_SATURATED = 0.99
#: steps in one dead-unit window: a unit silent over a whole window counts as dead
DEAD_WINDOW = 50


class ActivationProbe(Probe):
    STEADY = frozenset({"step_end"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._active: dict[str, torch.Tensor] = {}     # current window's per-unit masks
        self._window_start = 0
        self._full_windows = 0

    def layer_output(self, entry: ModelEntry, module: nn.Module, name: str, t: torch.Tensor,
                     root: bool) -> None:
        if self.ctx.sampled:
            self.light_output(entry, module, name, t, root)

    def light_output(self, entry: ModelEntry, module: nn.Module, name: str, t: torch.Tensor,
                     root: bool) -> None:
        if root:
            return
        if isinstance(module, RELU_TYPES) and t.dim() >= 1 and t.numel():
            unit_dim = t.dim() - 1 if t.dim() == 3 else min(1, t.dim() - 1)
            dims = tuple(d for d in range(t.dim()) if d != unit_dim)
            # a unit is alive when its largest output in the batch is positive: one float
            # reduction over every other dim (a tenth of a boolean any() on a CPU; a unit
            # whose outputs hold a NaN reads silent)
            x = t.detach()
            alive = x.amax(dim=dims) > 0 if dims else x > 0
            prev = self._active.get(name)
            self._active[name] = alive if prev is None or prev.shape != alive.shape else (
                prev | alive)
        elif isinstance(module, (nn.Tanh, nn.Sigmoid)):
            x = t.detach()
            sat = (x.abs() > TANH_SATURATED) if isinstance(module, nn.Tanh) else (
                (x > SIGMOID_SATURATED) | (x < 1 - SIGMOID_SATURATED))
            series = self.ctx.series(keys.SATURATED + name)
            self.ctx.put(sat.float().mean(), lambda s, a: series.add(s, float(a)))

    def step_end(self, record: Any) -> None:
        self._end_window()

    def steady_steps(self, count: int) -> None:
        self._end_window()

    def closing(self) -> None:
        self._end_window(final=True)

    def _end_window(self, final: bool = False) -> None:
        """Close the dead-unit window (every DEAD_WINDOW steps, and at the end)."""
        ctx = self.ctx
        step = ctx.step
        if not self._active or (not final and step - self._window_start < DEAD_WINDOW):
            return
        names = list(self._active)
        series = ctx.series(keys.DEAD_UNITS)
        if series.columns is None:
            series.columns = []
        for n in names:
            if n not in series.columns:
                series.columns.append(n)
        cols = list(series.columns)
        dead = torch.stack([(~self._active[n]).float().mean() for n in names])
        units = {n: int(self._active[n].numel()) for n in names}
        since = self._window_start
        dynamics = ctx.obs.dynamics

        def sink(s: int, arr: np.ndarray) -> None:
            row = [float("nan")] * len(cols)
            for n, v in zip(names, arr.reshape(-1).tolist()):
                row[cols.index(n)] = v
            series.add(s, row)
            dynamics["dead_window"] = {"since": since, "until": s, "units": units}
        full = step - since >= DEAD_WINDOW
        # a final partial window counts only when no full one was seen
        if full or not self._full_windows:
            ctx.pending.put(step, dead, sink)
        self._full_windows += full
        self._active = {}
        self._window_start = step
