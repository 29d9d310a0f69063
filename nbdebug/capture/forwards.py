"""Module forwards, routed to the probes: which model a forward belongs to, whether it
trains or evaluates, and where a step ends when no optimizer step marks it.

A part of the dispatcher (``core.Capture`` inherits it), kept apart because each kind of
step (``hooks.MODES``) sees forwards through its own hook.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import structure
from .models import ModelEntry, opt_params
from .patches import ModuleHook
from .probes.activations import LIGHT_TYPES
from .sampling import FLUSH_SECONDS

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context
    from .hooks import StepHooks
    from .models import Models
    from .sampling import Flushes, Sampling
    from .steady import Span

#: backward calls without an optimizer step before each counts as one
MAX_ACCUMULATION = 64


class Forwards:
    ctx: Context
    models: Models
    hooks: StepHooks
    span: Span
    opts: Any
    depth: int
    active: ModelEntry | None
    active_training: bool
    backward_step_pending: bool
    sampler: Sampling
    _on: dict[str, list[Any]]
    _events: dict[str, list[Any]]
    flushes: Flushes
    live: bool
    _last_flush: float
    _shapes: Any

    def _emit(self, event: str, *args: Any) -> None: ...
    def _emit_all(self, event: str, *args: Any) -> None: ...
    def _end_step(self, final: bool = False, assumed: bool = False) -> None: ...
    def note(self, text: str) -> None: ...
    def wake(self) -> None: ...

    def _is_candidate(self, module: nn.Module) -> bool:
        if self.opts.models or isinstance(module, nn.modules.loss._Loss):
            return False
        return next(iter(module.parameters()), None) is not None

    def _add_model(self, module: nn.Module) -> ModelEntry:
        entry = self.models.add(module)
        self.ctx.obs.models.append(entry.info)
        self._emit("model_added", entry, module)
        return entry

    def _pre_forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.depth += 1
        if self.depth != 1:
            if self.active is not None and self.active_training:
                self._emit("layer_input", self.active, module, args)
            return
        entry = self.models.owner(module)
        if entry is None:
            if not self._is_candidate(module):
                return
            entry = self.models.wrapping(module) or self._add_model(module)
        cur = self.ctx.cur
        if self.backward_step_pending and torch._C._current_graph_task_id() == -1:
            # with an optimizer around, backward calls accumulate until it steps
            if entry.optimized and len(cur.losses) >= MAX_ACCUMULATION:
                entry.optimized = False
                self.note(f"{entry.info.name}: {MAX_ACCUMULATION} backward calls without an "
                          "optimizer step; each backward now counts as a step")
            if not entry.optimized:
                self._end_step()
        self.active = entry
        self.active_training = torch.is_grad_enabled() and module.training
        if not self.active_training:
            return
        self._train_forward(entry, module, args, first=not entry.initialised)

    def _train_forward(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...],
                       first: bool = False) -> None:
        self.ctx.held_out(None)
        self.ctx.cur.forwards += 1
        entry.info.training_forwards += 1
        if first:
            entry.initialised = True
            self._emit("first_forward", entry, module)
        self._emit("train_input", entry, module, args)

    def _eval_forward(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...],
                      output: Any) -> None:
        self.ctx.cur.evals += 1
        self.span.clock.spoil()             # (not a training step: its time is not compared)
        self.ctx.held_out(structure.first_tensor(output))
        self._emit("eval_forward", entry, module, args, output)

    def _post_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.depth = max(0, self.depth - 1)
        entry = self.active
        if entry is None:
            return
        name = entry.names.get(id(module))
        if name is None:
            return
        root = self.depth == 0
        if root:
            self.active = None
            entry.info.output_kind = structure.output_kind(output)
        if not self.active_training:
            if root:
                self._eval_forward(entry, module, args, output)
            return
        if id(module) not in entry.leaves and not root:
            return
        t = structure.first_tensor(output)
        if t is not None and t.is_floating_point():
            self._emit("layer_output", entry, module, name, t, root)

    def _lean_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A lean step's view of a model's forward (one hook, after it)."""
        entry = self.models.root(module)
        if entry is None:
            return
        if not (torch.is_grad_enabled() and module.training):
            self._eval_forward(entry, module, args, output)
            return
        self._train_forward(entry, module, args)
        t = structure.first_tensor(output)
        if t is not None and t.is_floating_point():
            self._emit("layer_output", entry, module, entry.names[id(module)], t, True)

    def _light_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A light sample's view of an activation layer's forward (one hook, after it): a
        light step's, or on a span the next step's, which is the light sample."""
        if not (torch.is_grad_enabled() and module.training):
            return
        entry = self.models.owner(module)
        name = None if entry is None else entry.names.get(id(module))
        t = structure.first_tensor(output)
        if entry is not None and name is not None and t is not None and t.is_floating_point():
            step = self.span.step + 1 if self.span.open else self.ctx.step
            self._emit_light(step, entry, module, name, t, False)

    def _emit_light(self, step: int, entry: ModelEntry, module: nn.Module, name: str,
                    t: torch.Tensor, root: bool) -> None:
        """``light_output`` to the probes, their values recorded at ``step`` (on a span
        the context's step is still the one before the light sample's)."""
        ctx = self.ctx
        now, ctx.step = ctx.step, step
        try:
            self._emit_all("light_output", entry, module, name, t, root)
        finally:
            ctx.step = now

    def _arm_light(self) -> tuple[list[Any], list[Any]]:
        """The step before a light sample on a span: have the next batches' labels kept,
        and hook the activation layers its statistics read (the undo of each)."""
        labels: list[Any] = []
        self._emit_all("light_arm", labels)
        hooks = []
        module = self.span.root
        if module is not None:
            hook = ModuleHook(self.hooks.on["light"])
            for sub in module.modules():
                if isinstance(sub, LIGHT_TYPES):
                    hooks.append(sub.register_forward_hook(hook).remove)
        return labels, hooks

    def _watch_light_update(self) -> list[Any]:
        """A light sample's step on a span, at its root's forward: wrap the step of each
        optimizer the span assumes, for this step only, so that its update is seen (the
        ``light_update`` event before and after it); the undo of each."""
        undo = []
        for key in self.ctx.assumed:
            ref = self.ctx.optimizers.get(key)
            opt = ref[0]() if ref is not None else None
            if opt is not None:
                undo.append(self._step_once(opt))
        return undo

    def _step_once(self, opt: Any) -> Any:
        """Shadow ``opt.step`` by a wrapper that calls it unchanged, the update's statistics
        taken around it, and takes itself off at its call (or at the undo returned). Called
        on a later step (GradScaler skipped this one's update) it only calls the step; a
        step that raises lets go of what was held for it (``update_failed``)."""
        had, before = "step" in vars(opt), vars(opt).get("step")
        original = opt.step
        ctx = self.ctx
        guard = ctx.guard
        armed = ctx.step
        update = guard.hook(lambda first: self._emit_all(
            "light_update", opt, opt_params(opt), first, True), "light update")
        failed = guard.hook(lambda: self._emit_all("update_failed", opt), "light update")

        def restore() -> None:
            if vars(opt).get("step") is step:
                if had:
                    opt.step = before
                else:
                    del opt.step

        def step(*args: Any, **kwargs: Any) -> Any:
            restore()
            if ctx.step != armed:
                return original(*args, **kwargs)
            update(True)
            try:
                out = original(*args, **kwargs)
            except BaseException:
                failed()        # (what was held for its statistics goes with it)
                raise
            update(False)
            return out
        opt.step = step
        return restore

    def _measure_light(self, module: nn.Module, output: Any, step: int) -> int:
        """A light sample's step on a span, at its root's forward: the output's statistics;
        the next light step."""
        ctx = self.ctx
        entry = self.span.entry
        t = structure.first_tensor(output)
        if entry is not None and t is not None and t.is_floating_point():
            self._emit_light(step, entry, module, entry.names[id(module)], t, True)
        ctx.forget_batch()              # (the span's later batches are drawn unseen)
        more, ctx.light_more = ctx.light_more, False
        return self.sampler.light_done(step, more)

    def _steady_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A steady step's view of a model's forward: the step before ends here (after
        its backward, its optimizer stepped unseen), and this forward starts the next."""
        entry = self.models.root(module)
        if entry is None:
            return
        if self.ctx.cur.backwards:
            self._end_step(assumed=True)
        self.ctx.cur.unseen = True
        if self.hooks.mode != "steady":         # the step that ended chose another kind
            (self._hooked_forward if self.hooks.mode == "full" else self._lean_forward)(
                module, args, output)
            return
        if not (torch.is_grad_enabled() and module.training) or self.ctx.cur.forwards:
            self.wake()                         # a held-out pass, or a new kind of step
            self._lean_forward(module, args, output)
            return
        self._train_forward(entry, module, args)

    def _steady_general(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A steady root forward the span does not take: the step before a sampled one
        (the span takes it, and its optimizer step is hooked: the update of that step ends
        it and turns the next full), or the span closes, the forward goes the general way,
        and a span opens on the step it starts when that step is steady."""
        if self.span.take_last(module, args):
            self.hooks.watch_updates()
            self._events = self._on         # (its update goes to every probe)
            self.sampler.pre_sample(self.ctx.guard.own_now())
            return
        self.span.close(at_forward=True)
        self._steady_forward(module, args, output)
        entry = self.models.root(module)
        if self.hooks.mode == "steady" and entry is not None:
            self.span.start(entry, module, args, *self._span_bounds())

    def _resume_span(self) -> None:
        """A hooked step ended and the next runs steady: with one model, open its span
        now, so that the next step's forward takes the hot path."""
        if (self.hooks.mode != "steady" or self.span.open or self.depth
                or len(self.models) != 1):
            return
        entry = next(iter(self.models))
        module = entry.module()
        if module is not None:
            self.span.resume(entry, module, *self._span_bounds())

    def _span_bounds(self) -> tuple[tuple[int, ...], int, float, bool, int]:
        """A span's assumed optimizers, the step whose forward it leaves to the general
        path, the time its flush is due (live views), whether it takes that step, and the
        step of its first light sample."""
        until, before_sample = self.sampler.steady_until(self.ctx)
        stop = min(until, self.flushes.after(self.ctx.step))
        due = self._last_flush + FLUSH_SECONDS if self.live else math.inf
        return (self._shapes[-1][4] if self._shapes else (), stop, due,
                before_sample and until == stop, self.sampler.light_after(self.ctx.step))

    def _hooked_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A forward that ran before the global hooks went in (a step turned full midway)."""
        entry = self.models.root(module)
        if entry is not None and torch.is_grad_enabled() and module.training:
            self._train_forward(entry, module, args)

    def _bn_forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        entry = self.models.owner(module)
        if entry is not None and torch.is_grad_enabled():
            self._emit("layer_input", entry, module, args)

