"""Pre-flight (``--preflight``): at the primary optimizer's first step, before its update,
the runner (``nbdebug.preflight``) runs its experiments on copies; this probe hands it the
first step's model inputs and loss call, and the moment to run."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models import ModelEntry
from .base import Probe


class PreflightProbe(Probe):
    def train_input(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...]) -> None:
        ctx = self.ctx
        if ctx.preflight is None:
            return
        if ctx.primary is None and ctx.step == 0:
            ctx.first_inputs.append((args, {}))
        elif ctx.preflight.pending is not None:
            ctx.preflight.more(args)

    def train_loss(self, fn: str, input: torch.Tensor, target: Any, kwargs: dict,
                   out: torch.Tensor) -> None:
        inputs = self.ctx.first_inputs
        self.ctx.preflight.loss_seen(fn, input, target, kwargs, out,
                                     inputs[-1] if inputs else None)

    def before_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                      primary: bool) -> None:
        ctx = self.ctx
        if not primary or ctx.preflight is None:
            return
        if not ctx.preflight.done:
            try:
                ctx.preflight.run(ctx, opt)
            finally:
                ctx.first_inputs = []

    def step_end(self, cur: Any) -> None:
        if self.ctx.preflight is not None and self.ctx.preflight.pending is not None:
            self.ctx.preflight.later(self.ctx)

    def closing(self) -> None:
        if self.ctx.preflight is not None:
            self.ctx.preflight.end(self.ctx)
