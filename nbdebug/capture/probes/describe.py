"""The models and optimizers as they are at the end (parameters, groups, what each
optimizer holds, how many steps it took): the before-training audits read these."""

from __future__ import annotations

from typing import Any

import torch

from .. import structure
from ..models import opt_params
from .base import Probe


class DescribeProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._steps: dict[int, int] = {}

    def after_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                     primary: bool) -> None:
        self._steps[id(opt)] = self._steps.get(id(opt), 0) + 1

    def step_end(self, record: Any) -> None:
        for opt in self.ctx.assumed:        # a steady step: its optimizer steps, unseen
            self._steps[opt] = self._steps.get(opt, 0) + 1

    def finish(self) -> None:
        ctx = self.ctx
        opts = sorted(((ref(), i) for ref, i in ctx.optimizers.values() if ref() is not None),
                      key=lambda t: t[1])
        optimized = {id(p) for opt, _ in opts for p in opt_params(opt)}
        for entry in ctx.models:
            module = entry.module()
            if module is None:
                continue
            first = {p.name: p for p in entry.info.params}
            fresh = structure.describe_model(entry.info.name, module, optimized)
            for p in fresh.params:          # keep the first-step statistics
                prev = first.get(p.name)
                if prev is not None:
                    p.mean, p.std, p.min, p.max, p.absmax = (
                        prev.mean, prev.std, prev.min, prev.max, prev.absmax)
            entry.info.modules, entry.info.params = fresh.modules, fresh.params
        all_params = ctx.models.all_param_names()
        ctx.obs.optimizers = []
        for opt, i in opts:
            info = structure.describe_optimizer(ctx.name_of(opt, f"optimizer{i}"), opt,
                                                all_params)
            info.steps = self._steps.get(id(opt), 0)
            ctx.obs.optimizers.append(info)
