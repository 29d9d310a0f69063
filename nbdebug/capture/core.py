"""Capture: finds the model, optimizers, loaders and loss of a cell without being told.

The only layer that touches torch internals, and here only as a dispatcher: it installs
the interception points (module forward hooks, optimizer step hooks, ``Tensor.backward``),
decides where steps begin and end and which steps take statistics, and tells the probes
(``capture.probes``), which record what they measure into ``Observations`` through the
device-side ``Pending`` buffer. It never changes a tensor, draws a batch, consumes RNG or
keeps an autograd graph alive.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .. import keys
from ..errors import ErrorLog
from ..observations import Observations
from ..stats import Pending
from . import structure
from .context import Context, Guard
from .cost import Cost, calibrate
from .forwards import Forwards
from .hooks import StepHooks
from .models import ModelEntry, Models
from .patches import ModuleHook, Patches
from .probes import EVENTS, PROBES
from .sampling import FLUSH_SECONDS, STEADY_AFTER, Flushes, Sampling
from .steady import BULK, Span
from .steps import StepRecord
from .updates import Updates


class StopTraining(KeyboardInterrupt):
    """Raised at a step boundary when the user asked to stop (the sidebar's Stop button)."""


@dataclass
class Options:
    every: int = 10
    #: stretch the sampling interval when sampled steps cost more than 1% of the
    #: training's own time (the default; an explicit ``--every`` is kept as given)
    adaptive: bool = False
    models: list[nn.Module] = field(default_factory=list)
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    loaders: list[Any] = field(default_factory=list)


class Capture(Forwards, Updates):
    """The dispatcher: interception points in, probe events out.

    Three kinds of step (``hooks.MODES``): ``full`` steps (the first ones and the sampled
    ones) hook every module; ``lean`` steps hook each model's root, its BatchNorm layers
    and the optimizer steps; ``steady`` steps, once the training's steps all have one
    shape, hook each model's root and ``Tensor.backward`` only: a step ends at the next
    forward after its backward, and the step before a sampled one, the steps near an
    epoch's end and any held-out pass are hooked again. Steady steps run on a span
    (``steady.Span``): the probes get them in bulk when it closes.
    """

    def __init__(self, options: Options, obs: Observations,
                 namespace: Callable[[], dict[str, Any]] | None = None) -> None:
        self.opts = options
        self.obs = obs
        self.obs.every = options.every
        self._namespace = namespace or dict
        self.log = ErrorLog()
        self.guard = Guard(self.log)
        self.patches = Patches()
        self.pending = Pending()
        self.models = Models(self._name_of, self._namespace)
        self.ctx = Context(obs, self.pending, self.guard, self.models, self._namespace,
                           self._name_of)
        #: the steady steps' hot path
        self.span = Span(self.ctx, self.guard)
        self.ctx.sync = self.span.close
        self.ctx.split = self.span.split
        self.ctx.only_loaders = list(options.loaders)
        self.ctx.wake = self.wake
        self.ctx.emit = self._emit
        self.probes = [cls(self.ctx) for cls in PROBES]
        #: event -> the probes' handlers of it, in registration order
        self._on: dict[str, list[Callable[..., Any]]] = {
            event: [getattr(p, event) for p in self.probes if hasattr(p, event)]
            for event in EVENTS}
        #: the same for steady steps: only the probes that declared the event ``STEADY``
        self._steady_on = {event: [getattr(p, event) for p in self.probes
                                   if hasattr(p, event) and event in p.STEADY]
                           for event in EVENTS}
        #: the handlers of the current kind of step
        self._events = self._on
        self.sampler = Sampling(options.every, options.adaptive)
        self.flushes = Flushes()
        self.span.emit = self._emit_all
        self.span.arm = self._arm_light
        self.span.measure = self._measure_light
        self.span.watch_update = self._watch_light_update
        self.span.general = self._steady_general
        self.span.account = self.sampler.account
        self._fast_path()
        self.hooks = StepHooks(self.patches, self.models, {}, self.guard)
        self.depth = 0
        self.active: ModelEntry | None = None
        self.active_training = False
        self.backward_step_pending = False
        #: the shapes of the last hooked steps: alike and simple, steps may run steady
        self._shapes: deque[tuple[Any, ...]] = deque(maxlen=STEADY_AFTER)
        self._t0 = 0.0
        self._last_flush = 0.0
        #: called with the Observations after every flush (live dashboard, sidebar); a
        #: listener that raises is recorded as an internal error and dropped
        self.listeners: list[Callable[[Observations], None]] = []
        #: a live view watches: flush on wall time too (at most every FLUSH_SECONDS)
        self.live = False
        self._stop_requested = False
        self._stepping = 0                # optimizer steps under way (a wrapper's and its own)
        self.cost = Cost()

    # -- public ------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.ctx.step

    @property
    def errors(self) -> list[dict[str, str]]:
        return self.log.entries

    @property
    def own_seconds(self) -> float:
        return self.guard.own_seconds

    @property
    def loaders(self) -> dict[int, Any]:
        """id(loader) -> (weak reference, LoaderInfo) of the loaders seen."""
        return next(p for p in self.probes if hasattr(p, "loaders")).loaders

    @property
    def mode(self) -> str | None:
        """The kind of the step running now: "full", "lean" or "steady"."""
        return self.hooks.mode

    def request_stop(self) -> None:
        """Ask the training to stop at the next step boundary (safe from another thread:
        it only sets a flag)."""
        self._stop_requested = True
        self.span.interrupt()

    def record_error(self, where: str) -> None:
        """Record the exception being handled as an internal error of this diagnosis."""
        self.log.record(where)

    def note(self, text: str) -> None:
        self.ctx.note(text)

    def sampling(self) -> dict[str, Any]:
        """How statistics were sampled: the base interval, and the one nbdebug settled on."""
        return self.sampler.facts()

    def add_probe(self, probe: Any) -> None:
        """Tell ``probe`` (one not in ``PROBES``: a multi-rank run's) the events it
        defines from now on, after the others."""
        self.probes.append(probe)
        for event in EVENTS:
            if hasattr(probe, event):
                self._on[event].append(getattr(probe, event))
                if event in probe.STEADY:
                    self._steady_on[event].append(getattr(probe, event))
        self._fast_path()

    def _fast_path(self) -> None:
        """Steady steps take the hot path (``steady.Span``) when every probe that needs a
        steady event has its bulk twin; the loss probe gives the span its losses."""
        probes = [p for p in self.probes if p.STEADY]
        ok = all(hasattr(p, BULK[e]) for p in probes for e in p.STEADY)
        losses = [p for p in probes if "backward" in p.STEADY]
        self.span.loss_of = getattr(losses[0], BULK["backward"]) if (
            ok and len(losses) == 1) else None

    def _emit_all(self, event: str, *args: Any) -> None:
        """An event to every probe that defines it, whatever the kind of step (a steady
        span's bulk events, a light sample's)."""
        for handler in self._on[event]:
            handler(*args)

    def _emit(self, event: str, *args: Any) -> None:
        for handler in self._events[event]:
            handler(*args)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def preflight(self) -> Any:
        """The pre-flight runner (``--preflight``), or None."""
        return self.ctx.preflight

    @preflight.setter
    def preflight(self, runner: Any) -> None:
        self.ctx.preflight = runner

    def attach(self) -> None:
        self._t0 = self._last_flush = self.ctx.started = time.perf_counter()
        try:
            self.cost.per_hook, self.cost.per_root, self.cost.per_wrap = calibrate(
                Guard, ModuleHook)
        except Exception:
            self.log.record("calibration")
        self.sampler.exclude(self._t0 - self.sampler.started)
        if not self.live:
            self.flushes.unwatched()
        g = self.guard
        pre_step, post_step = g.hook(self._pre_step), g.hook(self._post_step)
        self.hooks.on.update(
            pre=g.hook(self._pre_forward), post=g.hook(self._post_forward),
            lean=g.hook(self._lean_forward), light=g.hook(self._light_forward),
            steady=self.span,
            bn=g.hook(self._bn_forward),
            opt_pre=lambda opt, args, kwargs: pre_step(opt),
            opt_post=lambda opt, args, kwargs: post_step(opt))
        self.hooks.set("full")
        p = self.patches
        # Tensor.backward is the span's wrapper throughout (setting it at each switch would
        # empty the method caches of every tensor type): one frame on a span, else the
        # general one; torch.autograd.backward, which it calls, is off on steady steps
        original = torch.Tensor.backward
        general = g.wrap(original, "backward", before=self._tensor_backward,
                         reentrant=False, scope="backward")
        p.patch(torch.Tensor, "backward", self.span.backward_wrapper(original, general))
        p.wrap(torch.autograd, "backward", g, reentrant=False, scope="backward",
               before=lambda a, k: self._on_backward(a, k, "autograd"))
        for handler in self._on["attach"]:
            handler(p, g)
        for m in self.opts.models:
            self._add_model(m)
        self.cost.fixed += time.perf_counter() - self._t0

    def detach(self) -> None:
        self.hooks.drop()
        for err in self.patches.remove_all():
            self.log.add("detach", err, self.patches.tracebacks.get(err, ""))

    def finish(self) -> Observations:
        """Close the last step, flush the device buffers and fill in the names."""
        t0 = time.perf_counter()
        stages = [("finish step", self._end_last_step),
                  ("finish dynamics", lambda: [h() for h in self._on["closing"]]),
                  ("finish flush", self._flush_pending),
                  ("finish", self._finish_observations)]
        for where, stage in stages:          # one failing stage does not skip the others
            try:
                stage()
            except Exception:
                self.log.record(where)
        for handler in self._on["finish"]:
            try:
                handler()
            except Exception:
                self.log.record("finish")
        self.cost.fixed += time.perf_counter() - t0
        self.obs.extra[keys.OVERHEAD] = self.overhead()
        return self.obs

    def _end_last_step(self) -> None:
        self.span.close()
        cur = self.ctx.cur
        if cur.backward or cur.losses:
            self._end_step(final=True, assumed=self.hooks.mode == "steady")

    def _finish_observations(self) -> None:
        self.obs.seconds = time.perf_counter() - self._t0
        if not len(self.models) and self.obs.backward_calls:
            self.note("no model was seen (the cell trains raw tensors): watched at the level "
                      "of the loss only (its value at the start, NaN/Inf, a loss that stops "
                      "moving, the learning rate's effect)")

    # -- modules -----------------------------------------------------------------
    def _set_mode(self, mode: str) -> None:
        self.hooks.set(mode)
        self.ctx.full = mode == "full"
        self._events = self._steady_on if mode == "steady" else self._on

    def wake(self) -> None:
        """Leave steady steps (a held-out loader starts, a held-out forward, a step of a
        new shape): the step under way ends if its backward ran, and the next are lean."""
        self.span.clock.spoil()
        if self.hooks.mode != "steady":
            return
        self.span.close()
        if self.ctx.cur.backwards:
            self._end_step(assumed=True)
        if self.hooks.mode == "steady":
            self._shapes.clear()
            self._set_mode("lean")

    # -- steps -------------------------------------------------------------------
    def _end_step(self, final: bool = False, assumed: bool = False) -> None:
        """Close the step: hand its values to the buffer, tell the probes, choose the next
        step's kind. ``assumed``: a steady step, whose optimizer steps were not seen."""
        ctx = self.ctx
        self._emit("step_closing")
        cur, ctx.cur = ctx.cur, StepRecord()
        self.backward_step_pending = False
        # backward calls after the last optimizer step: not a step, but still guarded
        tail = final and ctx.primary is not None and not assumed
        ctx.rows.commit(ctx.step, cur, lean=not ctx.full, with_loss=not tail)
        if tail:
            return
        if not assumed and not cur.unseen:      # (a step begun steady: its batch unseen)
            self._shapes.append(cur.shape())
        ctx.assumed = self._shapes[-1][4] if assumed and self._shapes else ()  # updates
        ctx.step += 1
        self.obs.steps = ctx.step
        self._emit("step_end", cur)
        if final:
            return
        if self.flushes.due(ctx.step, len(self.pending)) or ctx.flush_wanted or (
                self.live and time.perf_counter() - self._last_flush > FLUSH_SECONDS):
            t0 = time.perf_counter()
            self.flush()
            took = time.perf_counter() - t0
            self.sampler.exclude(took)          # not a step's cost
            self.span.clock.exclude(took)
            self.flushes.flushed(took, ctx.step, t0 - self._t0 - self.cost.flushes)
            self.cost.flushes += took
        self._next_step()
        if self._stop_requested:
            self._stop_requested = self.span.stopping = False
            raise StopTraining("stopped by user")

    def _next_step(self) -> None:
        """Choose the kind of the step that starts (``Sampling.kind``); a steady step that
        has started already turns full or lean now when the next must be seen whole."""
        ctx = self.ctx
        mode = self.sampler.kind(ctx, self.hooks.mode, self._shapes)
        if mode != self.hooks.mode and (self.depth == 0 or self.hooks.mode == "steady"):
            self._set_mode(mode)

    def flush(self) -> None:
        """Copy the pending device values to the host and tell the probes and listeners."""
        t0 = time.perf_counter()
        self.span.close()
        self._flush_pending()
        self.obs.seconds = t0 - self._t0
        self.obs.extra[keys.OVERHEAD] = self.overhead()
        self.obs.extra[keys.NBDEBUG_SECONDS] = self.own_seconds
        for handler in self._on["flush"]:
            try:
                handler()
            except Exception:
                self.log.record("flush")
        for listener in list(self.listeners):
            try:
                listener(self.obs)
            except Exception:
                self.log.record("listener")
                self.listeners.remove(listener)
        # (its time, listeners included, counts in own_seconds through the hook that called it)
        self._last_flush = time.perf_counter()

    def _flush_pending(self) -> None:
        self.ctx.flush_wanted = False
        self.ctx.rows.close_run()         # the steady steps' losses since the last row
        self.pending.flush()

    def overhead(self) -> float | None:
        """nbdebug's time as a share of the rest of the run's so far (``cost``): its hooks'
        bodies, their calls, and its start and end."""
        cost = self.cost
        cost.steady_own = self.span.own
        if self._on_cpu:
            cost.scale = self.span.clock.scale()
        return cost.share(self.guard, time.perf_counter() - self._t0)

    @property
    def _on_cpu(self) -> bool:
        """The training runs on the CPU (its first model's parameters are there)."""
        for entry in self.models:
            m = entry.module()
            p = next(m.parameters(), None) if m is not None else None
            if p is not None:
                return p.device.type == "cpu"
        return False

    def _name_of(self, obj: Any, default: str) -> str:
        """The user's name for ``obj`` (looked up once, when it is first seen)."""
        try:
            return structure.user_name(self._namespace(), obj) or default
        except Exception:
            self.log.record("names")
        return default
