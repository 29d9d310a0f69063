"""Gradients and updates: per-parameter gradient norms on every step (one fused
``_foreach_norm``; points 9 and 13), update/weight ratios and learning rates on sampled
steps (point 3), the gradient left over when a new backward starts (gradients never
zeroed), and the calls to ``zero_grad`` and the gradient clippers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from .base import Probe


class GradientProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._clones: dict[int, list[torch.Tensor]] = {}

    def attach(self, patches: Any, guard: Any) -> None:
        dynamics = self.ctx.obs.dynamics

        def count(args: tuple, kwargs: dict) -> None:
            dynamics["zero_grad_calls"] = dynamics.get("zero_grad_calls", 0) + 1
        patches.wrap(torch.optim.Optimizer, "zero_grad", guard, before=count)
        patches.wrap(nn.Module, "zero_grad", guard, before=count)
        import torch.nn.utils as nn_utils
        import torch.nn.utils.clip_grad as clip_mod
        for owner in (nn_utils, clip_mod):
            for name, kind in (("clip_grad_norm_", "norm"), ("clip_grad_value_", "value")):
                patches.wrap(owner, name, guard, original=getattr(clip_mod, name),
                             after=lambda a, k, out, kind=kind: self._on_clip(kind, a, k, out))

    def _on_clip(self, kind: str, args: tuple, kwargs: dict, out: Any) -> None:
        d = self.ctx.obs.dynamics
        d["clip_calls"] = d.get("clip_calls", 0) + 1
        key = "max_norm" if kind == "norm" else "clip_value"
        value = args[1] if len(args) > 1 else kwargs.get(key)
        if isinstance(value, (int, float)):
            d[f"clip_{key}"] = float(value)
        if kind == "norm" and isinstance(out, torch.Tensor) and out.dim() == 0:
            series = self.ctx.series(keys.CLIP_TOTAL_NORM)   # the norm before clipping
            self.ctx.put(out.detach().float(), lambda s, a: series.add(s, float(a)))

    # -- steps -------------------------------------------------------------------
    def backward(self, t: torch.Tensor, first: bool) -> None:
        """First backward of a sampled step: the norm of what the gradients already hold."""
        if not first or not self.ctx.sampled:
            return
        # (a frozen model, a distillation's teacher say, may keep old gradients: not stale)
        grads = [p.grad.detach() for entry in self.ctx.models
                 if (m := entry.module()) is not None for p in m.parameters()
                 if p.requires_grad and p.grad is not None and p.grad.layout == torch.strided]
        series = self.ctx.series(keys.STALE_GRAD)
        if not grads:
            series.add(self.ctx.step, 0.0)
            return
        # one norm per gradient (one operation); the host adds their squares
        self.ctx.put(list(torch._foreach_norm(grads)),
                     lambda s, a: series.add(s, float(np.sqrt(np.sum(np.square(a))))))

    def before_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                      primary: bool) -> None:
        self.record_grads(params)
        if self.ctx.sampled:
            self._clones[id(opt)] = [p.detach().clone() for p in params]
            series = self.ctx.series(f"{keys.LR}{self.ctx.optimizers[id(opt)][1]}")
            lrs = [g.get("lr") for g in opt.param_groups]
            if all(isinstance(v, (int, float)) for v in lrs):
                series.add(self.ctx.step, [float(v) for v in lrs if v is not None])

    def after_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                     primary: bool) -> None:
        if not self.ctx.full:
            # a lean step: the gradients, unchanged by the update, are read here
            self.record_grads(params)
            return
        clones = self._clones.pop(id(opt), None)
        if clones:
            with torch.no_grad():
                delta = torch._foreach_sub(params, clones)
                # the norms of the updates, then of the weights: divided on the host
                norms = [*torch._foreach_norm(delta), *torch._foreach_norm(clones)]
            names = self.ctx.models.names_of(params, tuple(map(id, params)))
            rows = self.ctx.rows
            self.ctx.put(norms, rows.sink([("ratio", keys.UPDATE_RATIO, names)]))

    def step_closing(self) -> None:
        """A step with no optimizer (manual updates): the models' own gradients."""
        ctx = self.ctx
        if ctx.primary is None and not ctx.cur.grads:
            for entry in ctx.models:
                m = entry.module()
                if m is not None:
                    self.record_grads(list(m.parameters()))

    def record_grads(self, params: list[torch.Tensor]) -> None:
        grads: list[torch.Tensor] = []
        ids: list[int] = []
        strided = torch.strided
        for p in params:
            g = p.grad
            if g is None:
                continue
            if g.layout != strided:
                self.ctx.note("gradient norms skipped for sparse gradients")
                continue
            grads.append(g)
            ids.append(id(p))
        if not grads:
            return
        norms = torch._foreach_norm(grads)
        names = self.ctx.models.names_of(params, tuple(ids))
        cur = self.ctx.cur
        cur.rows.append((keys.GRAD_NORM, names, list(norms)))   # copied with the step
        cur.grads = True
