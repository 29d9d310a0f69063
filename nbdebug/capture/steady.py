"""The steady steps' hot path: a span of steps of one shape, seen through two
interception points that keep two references each and nothing else.

Once the training's steps all have one simple shape (``sampling.Sampling.kind``), a step
is one forward of the model's root and one ``Tensor.backward``. The root hook then counts
the step and keeps a reference to its inputs; the backward keeps its loss, detached (no
tensor operation unless the loss is not a scalar). Nothing reaches the probes while the
span lasts. It closes at a step where something must happen (a flush; the step before a
sampled one, which it takes too and which its hooked update ends (``take_last``); an
epoch's last batches with BatchNorm; the bound on the inputs it keeps), at anything
irregular (a held-out forward, a second forward or backward in a step, a held-out
loader's pass, a call into a patch that reads the step), and when the diagnosis ends; the
training loader's next epoch only hands the ended steps over (``split``). A light sample
(``sampling.LIGHT``) stays on the span: the forward of the step before it arms its hooks
(the activation layers, the next batch's labels) and its own forward takes it
(``_light``). A span opens on a step whose forward the general path saw (``start``), or,
after a hooked step's update, before the next step begins (``resume``). ``close`` hands
the span over as if each step had gone the general way: the losses to the buffer as
one run, the inputs and the count of steps to the probes' bulk events
(``steady_inputs``, ``steady_steps``), the step in progress back to ``ctx.cur``.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Callable

import torch

from .context import Context, Guard
from .cost import SpanClock
from .patches import CopiedInert
from .structure import SpanInputs, input_bytes
from .steps import StepRecord

#: the inputs a span keeps alive, in bytes at most (the NaN replay's window keeps as much)
SPAN_BYTES = 32 * 2**20
#: a probe's steady event, and the bulk event that must stand in for it on a span
BULK = {"train_input": "steady_inputs", "step_end": "steady_steps", "backward": "steady_loss"}


class Span(CopiedInert):
    def __init__(self, ctx: Context, guard: Guard) -> None:
        self.ctx = ctx
        self.guard = guard
        #: the probes' bulk events and the dispatcher's general path (set by the dispatcher)
        self.emit: Callable[..., None] = lambda *args: None
        self.general: Callable[..., None] = lambda *args: None
        self.account: Callable[[int], None] = lambda steps: None
        #: a light sample's hooks in (the undo callables of its labels' catch and of its
        #: layers' hooks), and its statistics taken (the root's output; the next light
        #: step returned)
        self.arm: Callable[[], tuple[list[Callable[[], None]], list[Callable[[], None]]]] = (
            lambda: ([], []))
        self.measure: Callable[[Any, Any, int], int] = lambda module, output, step: 0
        #: a light sample's update seen (its optimizers' steps wrapped once: the undo of
        #: each, which the wrapper calls itself)
        self.watch_update: Callable[[], list[Callable[[], None]]] = lambda: []
        #: the loss of a backward, as the loss probe keeps it; None: no hot path at all
        self.loss_of: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.open = False
        #: a stop was asked for (from another thread): no span takes a step until it is done
        self.stopping = False
        self.root: Any = None
        self.entry: Any = None
        self.assumed: tuple[int, ...] = ()
        self.first = 0              # the step in progress when the span opened
        self.step = 0               # the step in progress now
        self.stop_at = 0            # a forward that would start this step goes the general way
        self.light_at = 0           # a light sample's step on the span (0: none)
        self.hot = 0                # the hot path takes the steps before this one
        self.armed: list[Callable[[], None]] = []       # (the labels' catch)
        self.hooked: list[Callable[[], None]] = []      # (the layers' hooks)
        self.updating: list[Callable[[], None]] = []    # (its optimizers' steps)
        self.last = False           # ... but the span takes that step (``take_last``)
        self.took_last = False
        self.accounted = 0
        #: a span resumed between steps (``resume``): its first step ended the general
        #: way (1, else 0), and when (and at what own time) its first forward ran
        self.skip = 0
        self.first_t, self.first_own = 1.0, 0.0
        #: the steps the last span's inputs allowed (SPAN_BYTES; 0: no span yet)
        self._cap = 0
        self.deadline = math.inf    # (live views) when the next flush is due
        self.bw = 0                 # backward calls of the step in progress
        self.inputs: list[tuple[Any, ...]] = []     # each later step's forward inputs
        self.losses: list[torch.Tensor] = []
        #: seconds of nbdebug's clock spent on the hot path (the general one is a hooked
        #: step's), and where spans open and close, to time both kinds of step
        self.own = 0.0
        self.clock = SpanClock()
        self._call = 0.0            # when the forward hook running now began (0: none runs)

    # -- the hot path ----------------------------------------------------------------
    def __call__(self, module: Any, args: tuple[Any, ...], output: Any) -> None:
        """The steady root hook (the span itself is the hook: no frame between torch and
        it): a forward that starts the next step of the span, or the general path."""
        guard = self.guard
        guard.hook_calls += 1
        if guard.paused:
            return None
        t0 = time.perf_counter()
        if (self.open and module is self.root and self.bw == 1 and self.step + 1 < self.hot
                and t0 < self.deadline and module.training and torch.is_grad_enabled()):
            self.step += 1
            self.ctx.step = self.step
            self.bw = 0
            self.inputs.append(args)
            if not self.first_t:            # a resumed span's first forward: its clock
                self.first_t, self.first_own = t0, guard.own_seconds
            took = time.perf_counter() - t0
            self.own += took
        else:
            self._call = t0
            try:
                if self._light(module, args, output, t0):
                    took = time.perf_counter() - t0
                    self.own += took
                else:
                    if self.armed:          # (a light sample at the span's last step)
                        self._last_light(module, output)
                    self.general(module, args, output)
            except Exception:
                guard.errors.record("steady forward")
            self._call = 0.0
            took = time.perf_counter() - t0
        guard.own_seconds += took
        return None

    def _light(self, module: Any, args: tuple[Any, ...], output: Any, t0: float) -> bool:
        """The forward of the step before a light sample (its hooks go in) or of the light
        sample's step (its statistics are taken, its hooks come out), taken as the hot
        path takes a step. False: the forward goes the general way."""
        if not (self.light_at and self.open and module is self.root and self.bw == 1
                and self.step + 1 < self.stop_at and t0 < self.deadline and module.training
                and torch.is_grad_enabled()):
            return False
        self.step += 1
        self.ctx.step = self.step
        self.bw = 0
        self.inputs.append(args)
        if not self.first_t:
            self.first_t, self.first_own = t0, self.guard.own_seconds
        if self.step < self.light_at:
            self.armed, self.hooked = self.arm()
        else:
            nxt = self.measure(module, output, self.step)
            self._undo(self.updating)
            self.updating = self.watch_update()
            self._undo(self.hooked)
            if nxt != self.step + 1:     # (else the next step completes its accuracy)
                self._undo(self.armed)
            self._light_from(nxt)
        return True

    def _last_light(self, module: Any, output: Any) -> None:
        """A forward the span leaves to the general way while armed for a light sample: if
        it is the light sample's (a flush's step, say), its statistics are taken first; the
        hooks come off either way."""
        self._disarm()
        if (self.step + 1 == self.light_at and module is self.root and self.bw == 1
                and module.training and torch.is_grad_enabled()):
            self.measure(module, output, self.light_at)

    def _light_from(self, light_at: int) -> None:
        """The next light sample on the span (due from ``light_at``; 0: none): the first
        due whose step before it the span takes, or the next step when still armed."""
        light_at = max(light_at, self.step + (1 if self.armed else 2)) if light_at else 0
        self.light_at = light_at if light_at <= self.stop_at else 0
        if not self.light_at:     # (a wrapped update stays: it takes itself off when called)
            self._undo(self.hooked)
            self._undo(self.armed)
        self.hot = min(self.stop_at, self.light_at - 1) if self.light_at else self.stop_at

    def _disarm(self) -> None:
        self._undo(self.hooked)
        self._undo(self.armed)
        self._undo(self.updating)

    @staticmethod
    def _undo(armed: list[Callable[[], None]]) -> None:
        todo = list(armed)
        armed.clear()
        for undo in todo:
            undo()

    def _own_now(self, now: float) -> float:
        """nbdebug's clock now, the forward hook running now included."""
        return self.guard.own_seconds + (now - self._call if self._call else 0.0)

    def backward_wrapper(self, original: Callable[..., Any],
                         general: Callable[..., Any]) -> Callable[..., Any]:
        """``Tensor.backward`` for the whole diagnosis: on a span, the span's backward in
        the wrapper's own frame, then ``original``; else ``general`` (the guarded wrapper,
        whose ``backward`` scope it shares: a call made inside an observed one, through a
        TorchFunctionMode say, is not observed again)."""
        span, guard = self, self.guard
        inside = guard.inside("backward")

        @functools.wraps(original)
        def backward(tensor: Any, *args: Any, **kwargs: Any) -> Any:
            if span.open and not span.bw and not inside[0] and not guard.paused:
                t0 = time.perf_counter()
                try:
                    span.losses.append(span.loss_of(tensor))   # type: ignore[misc]
                    span.bw = 1
                except Exception:
                    guard.errors.record("steady backward")
                took = time.perf_counter() - t0
                guard.own_seconds += took
                span.own += took
                if span.bw:                 # (else the general wrapper counts the call)
                    guard.wrap_calls += 1
                    inside[0] = True
                    try:
                        return original(tensor, *args, **kwargs)
                    finally:
                        inside[0] = False
            return general(tensor, *args, **kwargs)
        return backward

    # -- opening and closing ---------------------------------------------------------
    def start(self, entry: Any, module: Any, args: tuple[Any, ...], assumed: tuple[int, ...],
              stop_at: int, deadline: float, last: bool = False, light_at: int = 0) -> None:
        """Open a span on the step in progress, whose forward (``args``) the general path
        has just seen. ``last``: the step ``stop_at`` is one to take too (``take_last``)."""
        if self.loss_of is None:
            return
        cur = self.ctx.cur
        if (cur.forwards != 1 or cur.backwards or cur.losses or cur.guards or cur.rows
                or not cur.unseen):
            return
        size = input_bytes(args)
        self._cap = max(1, SPAN_BYTES // max(size, 1))
        self._open(entry, module, assumed, self.ctx.step, stop_at, deadline, last, light_at)
        self.skip, self.bw = 0, 0
        now = time.perf_counter()
        self.clock.opened(now, self._own_now(now), self.first)

    def resume(self, entry: Any, module: Any, assumed: tuple[int, ...], stop_at: int,
               deadline: float, last: bool = False, light_at: int = 0) -> None:
        """Open a span between steps, the one before having ended the general way (a
        sampled step, at its update): the next forward of ``module`` starts the span's
        first step on the hot path (no general forward), and its clock opens there. Not
        before a span has started (its inputs' size bounds the span's length)."""
        if self.loss_of is None or not self._cap:
            return
        self._open(entry, module, assumed, self.ctx.step - 1, stop_at, deadline, last,
                   light_at)
        self.skip, self.bw = 1, 1           # (as if that step's backward ran on the span)
        self.first_t = 0.0
        if light_at and light_at <= self.ctx.step < self.stop_at:
            # a light sample due at its first step, whose batch is not drawn yet: armed now
            self.armed, self.hooked = self.arm()
            self._light_from(light_at)

    def _open(self, entry: Any, module: Any, assumed: tuple[int, ...], first: int,
              stop_at: int, deadline: float, last: bool, light_at: int) -> None:
        self.root, self.entry, self.assumed = module, entry, assumed
        self.first = self.step = first
        self.stop_at = min(stop_at, self.step + self._cap + 1)
        self.last = last and self.stop_at == stop_at
        self.took_last = False
        self.accounted = 0          # of its ended steps, those timed already
        self.first_t = 1.0
        if self.stopping:
            self.stop_at = 0
        self._light_from(light_at)
        self.deadline = deadline
        self.open = True

    def take_last(self, module: Any, args: tuple[Any, ...]) -> bool:
        """The forward of the span's last step, the one before a sampled step: take it as
        the hot path takes a step (the dispatcher then hooks its optimizer step, which
        closes the span). False: the forward goes the general way."""
        if not (self.open and self.last and self.step + 1 == self.stop_at and self.bw == 1
                and module is self.root and module.training and torch.is_grad_enabled()):
            return False
        self.last, self.took_last = False, True
        now = time.perf_counter()               # (the span's time ends here: whole steps)
        self._late_open()
        self.clock.closed(now, self._own_now(now), self.step + 1, at_forward=True)
        self.step += 1
        self.ctx.step = self.step
        self.bw = 0
        self.inputs.append(args)
        self.accounted = len(self.inputs) - self.skip
        self.account(self.accounted)            # (the steps before it ended: timed now)
        return True

    def _late_open(self) -> None:
        """A resumed span's clock opens at its first forward, once it has run."""
        if self.skip and self.first_t > 0:
            self.clock.opened(self.first_t, self.first_own, self.first + 1)
            self.first_t = -1.0             # (opened: not again, and no forward to note)

    def interrupt(self) -> None:
        """The next forward goes the general way (a stop was asked for), until ``stopping``
        is cleared."""
        self.stopping = True
        self.stop_at = self.hot = 0

    def close(self, at_forward: bool = False) -> None:
        """Hand the span over: afterwards the context is as the general path leaves it.
        ``at_forward``: at the forward that begins the next step (the general path's)."""
        if not self.open:
            return
        self.open = False
        self._disarm()
        now = time.perf_counter()
        self._late_open()
        if not self.took_last:                  # (else ``take_last`` stopped the clock)
            self.clock.closed(now, self._own_now(now), self.step + 1, at_forward)
        ctx = self.ctx
        inputs, losses = self.inputs, self.losses
        self.inputs, self.losses = [], []
        forwards = len(inputs)              # the forwards after the first each ended a step
        ended = max(0, forwards - self.skip)    # (a resumed span's first had ended)
        if ended:
            ctx.rows.extend_run(self.first + self.skip, losses[:ended])
        if forwards:
            ctx.cur = StepRecord(forwards=1, unseen=True)
            ctx.step = ctx.obs.steps = self.step
        rest = losses[ended:]
        if rest:
            cur = ctx.cur
            cur.losses.extend(rest)
            cur.backwards += len(rest)
            cur.backward, cur.via = True, "tensor"
        ctx.obs.backward_calls += len(losses)
        self._hand_over(inputs, ended)
        self.root = self.entry = None       # (nothing of the user's kept between spans)

    def split(self) -> None:
        """Between two steps (a new epoch of the training loader begins): hand the steps
        that ended over as ``close`` does, and go on. The step in progress (its update
        done, unseen) stays the span's: its loss becomes the first of the span's next
        run, and the next forward stays on the hot path. A span armed for a light sample,
        or one whose step's backward has not run, closes instead."""
        if not self.open:
            return
        if self.bw != 1 or self.armed or self.took_last:
            self.close()
            return
        inputs, losses = self.inputs, self.losses
        if not inputs:                      # (a resumed span before its first forward)
            return
        self._late_open()
        ended = max(0, len(inputs) - self.skip)
        if ended:
            self.ctx.rows.extend_run(self.first + self.skip, losses[:ended])
        self.ctx.obs.steps = self.step
        self.ctx.obs.backward_calls += len(losses[:ended])
        self.inputs, self.losses = [], losses[ended:]
        self._hand_over(inputs, ended)
        self.first, self.skip, self.accounted = self.step, 0, 0

    def _hand_over(self, inputs: list[tuple[Any, ...]], ended: int) -> None:
        """The span's inputs (one a forward after its first) and its ended steps to the
        probes' bulk events."""
        ctx = self.ctx
        if inputs:
            self.entry.info.training_forwards += len(inputs)
            ctx.assumed = self.assumed
            first = self.first + 1
            self.emit("steady_inputs", self.entry, self.root, SpanInputs(first, inputs))
        if ended:
            self.emit("steady_steps", ended)
            self.account(ended - self.accounted)
