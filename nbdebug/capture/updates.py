"""Optimizer steps and backward calls, routed to the probes: where a step ends when an
optimizer steps, and what a backward call tells.

A part of the dispatcher (``core.Capture`` inherits it), as ``forwards`` is.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import torch

from . import structure
from .models import opt_params

if TYPE_CHECKING:  # pragma: no cover
    from ..observations import Observations
    from .context import Context
    from .hooks import StepHooks
    from .steady import Span


class Updates:
    ctx: Context
    obs: Observations
    opts: Any
    hooks: StepHooks
    span: Span
    backward_step_pending: bool
    _stepping: int

    def _emit(self, event: str, *args: Any) -> None: ...
    def _end_step(self, final: bool = False, assumed: bool = False) -> None: ...
    def _resume_span(self) -> None: ...
    def wake(self) -> None: ...

    def _tensor_backward(self, args: tuple, kwargs: dict) -> None:
        """``Tensor.backward`` that the span's wrapper did not take (no span, a second
        backward in the step): the span closes and the backward goes the general way."""
        self.span.close()
        self._on_backward(args, kwargs, "tensor")

    def _watch_optimizer(self, opt: torch.optim.Optimizer) -> bool:
        if self.opts.optimizers and not any(opt is o for o in self.opts.optimizers):
            return False
        known = self.ctx.optimizers
        if id(opt) not in known:
            known[id(opt)] = (weakref.ref(opt), len(known))
        return True

    def _pre_step(self, opt: torch.optim.Optimizer) -> None:
        self._stepping += 1
        if self._stepping > 1:
            return
        if not self.ctx.full:
            if self.ctx.sampled and id(opt) in self.ctx.optimizers:   # a light sample
                self._emit("light_update", opt, opt_params(opt), True, False)
            return
        if not self._watch_optimizer(opt):
            return
        ctx = self.ctx
        if ctx.primary is None:
            ctx.primary = id(opt)
            self.backward_step_pending = False
        self._emit("before_update", opt, opt_params(opt), id(opt) == ctx.primary)

    def _post_step(self, opt: torch.optim.Optimizer) -> None:
        self._stepping = max(0, self._stepping - 1)
        if self._stepping:
            return          # an optimizer stepped by the one stepping (Accelerate's wrapper)
        self.span.close()   # (the step before a sampled one ran on the span until now)
        if id(opt) not in self.ctx.optimizers and not self._watch_optimizer(opt):
            return
        ctx = self.ctx
        if ctx.primary is None:
            ctx.primary = id(opt)
            self.backward_step_pending = False
        ctx.cur.updates.append(id(opt))
        primary = id(opt) == ctx.primary
        params = opt_params(opt)
        self._emit("after_update", opt, params, primary)
        if ctx.sampled and not ctx.full:
            self._emit("light_update", opt, params, False, False)
        if primary:
            self._end_step()
            self._resume_span()

    def _on_backward(self, args: tuple, kwargs: dict, via: str = "tensor") -> None:
        t = structure.first_tensor(args[0] if args else kwargs.get("tensors"))
        if t is None:
            return
        self._stepping = 0                  # (no optimizer step is under way in a backward)
        cur = self.ctx.cur
        if cur.backwards and self.hooks.mode == "steady":
            self.wake()                         # two backward calls in one step
            cur = self.ctx.cur
        elif cur.backwards and not cur.forwards and self.ctx.primary is None:
            # raw tensors, no model and no optimizer (a manual update of leaf tensors):
            # a backward after a backward is the next step
            self._end_step()
            cur = self.ctx.cur
        cur.via = via
        self.obs.backward_calls += 1
        cur.backwards += 1
        self._emit("backward", t, not cur.backward)
        cur.backward = True
        if self.ctx.primary is None:
            # no optimizer yet: the next forward of a model starts a new step (not one that
            # autograd runs inside this backward, an activation checkpoint's say)
            self.backward_step_pending = True
