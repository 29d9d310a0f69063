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
from ..models import opt_params
from .base import Probe, foreach_norm, local_parts


class GradientProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        #: id(optimizer) -> the step and the copy of its weights before that step's update
        self._clones: dict[int, tuple[int, list[torch.Tensor]]] = {}
        self._patches: Any = None
        #: raw-tensor training (no model): the leaves the loss reaches, and the norms of
        #: their gradients this step (taken as autograd accumulates each)
        self._leaves: list[str] = []
        self._raw: dict[str, torch.Tensor] = {}
        #: parameters some zero_grad call cleared since their optimizer last stepped, and
        #: each optimizer's gradient tensors as they were at its last step
        self._zeroed: set[int] = set()
        self._after: dict[int, tuple[dict[int, int], int]] = {}

    def attach(self, patches: Any, guard: Any) -> None:
        self._patches = patches
        dynamics = self.ctx.obs.dynamics

        def count(args: tuple, kwargs: dict) -> None:
            dynamics["zero_grad_calls"] = dynamics.get("zero_grad_calls", 0) + 1
            owner = args[0] if args else None
            if isinstance(owner, torch.optim.Optimizer):
                self._zeroed.update(id(p) for p in opt_params(owner))
            elif isinstance(owner, nn.Module):
                self._zeroed.update(id(p) for p in owner.parameters())
        patches.wrap(torch.optim.Optimizer, "zero_grad", guard, before=count)
        patches.wrap(nn.Module, "zero_grad", guard, before=count)
        import torch.nn.utils as nn_utils
        import torch.nn.utils.clip_grad as clip_mod
        for owner in (nn_utils, clip_mod):
            for name, kind in (("clip_grad_norm_", "norm"), ("clip_grad_value_", "value")):
                patches.wrap(owner, name, guard, original=getattr(clip_mod, name),
                             after=lambda a, k, out, kind=kind: self._on_clip(kind, a, k, out))
        if hasattr(nn_utils, "clip_grads_with_norm_"):     # the norm given (tensor parallel)
            patches.wrap(nn_utils, "clip_grads_with_norm_", guard, after=lambda a, k, out:
                         self._on_clip("norm", a, k, a[2] if len(a) > 2 else
                                       k.get("total_norm")))

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
        if not len(self.ctx.models) and not self._leaves and self.ctx.obs.backward_calls <= 3:
            self._watch_leaves(t)

    def _stale(self, opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        """Did this optimizer step on gradients cleared since its last step? Judged on the
        parameters it steps (a GAN's generator backward fills the discriminator's .grad,
        which the discriminator's own zero_grad clears): a zero_grad call that covered
        them, or new gradient tensors (``p.grad = None`` by hand), count as cleared."""
        now = {id(p): id(p.grad) for p in params if p.requires_grad and p.grad is not None}
        before, when = self._after.get(id(opt), ({}, -2))
        self._after[id(opt)] = (now, self.ctx.step)
        zeroed, self._zeroed = self._zeroed, self._zeroed - set(now)
        if when != self.ctx.step - 1 or not now or not before:
            return                        # (compared over consecutive hooked steps only)
        kept = [k for k, g in now.items() if before.get(k) == g and k not in zeroed]
        index = self.ctx.optimizers[id(opt)][1]
        series = self.ctx.series(keys.STALE_GRAD + ("" if index == 0 else f"/{index}"))
        if len(kept) * 2 <= len(now):
            series.add(self.ctx.step, 0.0)
            return
        kept_ids = set(kept)
        left = [g.detach() for p in params if id(p) in kept_ids and (g := p.grad) is not None
                and g.layout == torch.strided]
        # the gradients it stepped on, never cleared: their norm (one operation)
        self.ctx.put(foreach_norm(left),
                     lambda s, a: series.add(s, float(np.sqrt(np.sum(np.square(a))))))

    def before_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                      primary: bool) -> None:
        self.record_grads(params)
        if self.ctx.sampled:
            self._hold(opt, params)

    def after_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                     primary: bool) -> None:
        self._stale(opt, params)
        if not self.ctx.full:
            # a lean step: the gradients, unchanged by the update, are read here
            self.record_grads(params)
            return
        self._put_update(opt, params)

    def light_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                     before: bool, on_span: bool) -> None:
        """A light sample's update: its ratios (a copy of the weights before it); on a
        span its gradient norms too (a light step off the span records them in
        ``after_update``, as a lean step does)."""
        if not before:
            self._put_update(opt, params)
            return
        if on_span:
            norms, names = self._grad_norms(params)
            if norms:
                self.ctx.put(norms, self.ctx.rows.sink([("row", keys.GRAD_NORM, names)]))
        self._hold(opt, params)

    def update_failed(self, opt: torch.optim.Optimizer) -> None:
        self._clones.pop(id(opt), None)

    def _hold(self, opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        """A copy of the weights before an update (its ratios), and the learning rates."""
        with torch.no_grad():
            try:
                clones = list(torch._foreach_mul(params, 1.0))
            except RuntimeError:               # (mixed devices, DTensors: one at a time)
                clones = [p.detach().clone() for p in params]
        self._clones[id(opt)] = (self.ctx.step, clones)
        series = self.ctx.series(f"{keys.LR}{self.ctx.optimizers[id(opt)][1]}")
        lrs = [g.get("lr") for g in opt.param_groups]
        if all(isinstance(v, (int, float)) for v in lrs):
            series.add(self.ctx.step, [float(v) for v in lrs if v is not None])

    def _put_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        """The update's norm against the weights' of each parameter (``_hold`` before)."""
        held = self._clones.pop(id(opt), None)
        # (a copy of another step's: that update raised before it ended, say)
        clones = held[1] if held is not None and held[0] == self.ctx.step else None
        if clones:
            with torch.no_grad():
                try:
                    delta = torch._foreach_sub(params, clones)
                except RuntimeError:           # DTensors among tensors: this rank's parts
                    clones = local_parts(clones)
                    delta = torch._foreach_sub(local_parts(params), clones)
                # the norms of the updates, then of the weights (one fused operation):
                # divided on the host
                norms = foreach_norm([*delta, *clones])
            names = self.ctx.models.names_of(params, tuple(map(id, params)))
            rows = self.ctx.rows
            self.ctx.put(norms, rows.sink([("ratio", keys.UPDATE_RATIO, names)]))

    def _watch_leaves(self, t: torch.Tensor) -> None:
        """Training on raw tensors: hook the leaf tensors the loss reaches (at most 64), to
        take each gradient's norm once autograd has accumulated it."""
        seen: set[int] = set()
        stack: list[Any] = [t.grad_fn]
        leaves: list[torch.Tensor] = []
        while stack and len(leaves) < 64 and len(seen) < 10_000:
            fn = stack.pop()
            if fn is None or id(fn) in seen:
                continue
            seen.add(id(fn))
            leaf = getattr(fn, "variable", None)
            if isinstance(leaf, torch.Tensor):
                leaves.append(leaf)
            stack.extend(f for f, _ in fn.next_functions)
        for i, leaf in enumerate(leaves):
            name = self.ctx.name_of(leaf, f"tensor{i}")
            self._leaves.append(name)
            hook = self.ctx.guard.hook(lambda p, name=name: self._raw_grad(name, p),
                                       "raw gradients")
            self._patches.handle(leaf.register_post_accumulate_grad_hook(hook))

    def _raw_grad(self, name: str, leaf: torch.Tensor) -> None:
        if leaf.grad is not None and leaf.grad.layout == torch.strided:
            self._raw[name] = torch.linalg.vector_norm(leaf.grad.detach())

    def step_closing(self) -> None:
        """A step with no optimizer (manual updates): the models' own gradients."""
        ctx = self.ctx
        if self._raw:
            names = tuple(self._raw)
            ctx.cur.rows.append((keys.GRAD_NORM, names, [self._raw[n] for n in names]))
            ctx.cur.grads = True
            self._raw = {}
        if ctx.primary is None and not ctx.cur.grads:
            for entry in ctx.models:
                m = entry.module()
                if m is not None:
                    self.record_grads(list(m.parameters()))

    def record_grads(self, params: list[torch.Tensor]) -> None:
        norms, names = self._grad_norms(params)
        if not norms:
            return
        cur = self.ctx.cur
        cur.rows.append((keys.GRAD_NORM, names, norms))   # copied with the step
        cur.grads = True

    def _grad_norms(self, params: list[torch.Tensor]
                    ) -> tuple[list[torch.Tensor], tuple[str, ...]]:
        """The norm of each parameter's gradient (one fused operation), and their names."""
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
            return [], ()
        return foreach_norm(grads), tuple(self.ctx.models.names_of(params, tuple(ids)))
