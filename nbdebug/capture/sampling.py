"""When steps take statistics, which kind each step is (full, lean or steady), and when
the device values go to the host.

Statistics every ``interval`` steps, the interval stretched while sampled steps would cost
more than ``SAMPLED_BUDGET`` of the training's own time; flushes every ``window`` steps,
stretched while a flush would cost more than ``FLUSH_BUDGET`` (``Flushes``)."""

from __future__ import annotations

import math
import time
from typing import Any

#: first steps with every module hooked (discovery, execution order)
FULL_STEPS = 2
#: training steps whose audits (labels, input ranges, loss inputs) always run
LABEL_STEPS = 10
#: adaptive sampling: sampled steps' extra cost, share of a step's time
SAMPLED_BUDGET = 0.01
#: adaptive sampling never samples less often than this (a long run of cheap steps, whose
#: sampled step costs a few steps, reaches the budget near 300)
MAX_INTERVAL = 500
#: ... nor more than the run so far over this apart (this many samples each time the run
#: doubles: fewer lose corpus verdicts)
MIN_SAMPLES = 5
#: steps of one shape (one forward, one backward, the same optimizer steps) before steps
#: run steady: a root hook and the backward only
STEADY_AFTER = 3
#: with BatchNorm, steps run steady only while this many batches of the epoch are left
EPOCH_ROOM = 3
#: steps between host copies at first; the windows are multiples of it
FLUSH_EVERY = 50
#: the flush window doubles while a flush costs more than this share of the steps between
#: two (a long run of cheap steps: a flush of about 0.5 ms against steps of 0.5 ms) ...
FLUSH_BUDGET = 0.005
#: ... up to this many steps (a NaN on a steady step is still found at its own step: the
#: window only delays when it is read)
MAX_WINDOW = 400
#: ... or sooner, at the end of the step where the buffer holds this many values (about
#: 50 sampled steps of a small model: the memory held does not grow with the window)
FLUSH_ITEMS = 500
#: with listeners (live views), flush at least this often (seconds)
FLUSH_SECONDS = 0.5


class Sampling:
    def __init__(self, every: int, adaptive: bool) -> None:
        self.every = every
        self.adaptive = adaptive
        self.interval = every
        self.started = self._t0 = time.perf_counter()
        self._sampled_seconds = 0.0       # own time on sampled steps, and their count
        self._sampled_steps = 0
        self._lean_seconds = 0.0          # time of lean steps, and their count
        self._lean_steps = 0
        #: time of the steps before sampled ones (hooked for the sample: part of its
        #: cost), and their count; whether the step running now is one
        self._pre_seconds = 0.0
        self._pre_steps = 0
        self._before_sample = False
        #: the same for such steps run on the span until their update (``pre_sample``):
        #: nbdebug's own seconds on them, their count, and its clock when the one running
        #: now was taken
        self._pre_own_seconds = 0.0
        self._pre_own_steps = 0
        self._pre_own: float | None = None

    def exclude(self, seconds: float) -> None:
        """Time spent between steps that is not a step's cost (a flush)."""
        self._t0 += seconds

    def pre_sample(self, own: float) -> None:
        """The step before a sampled one runs on the span until its update
        (``Span.take_last``): its cost is nbdebug's clock from here (``own``) to its end."""
        self._pre_own = own

    def next(self, step: int, sampled: bool, own: float = 0.0) -> bool:
        """Time the step that ended (``step`` steps so far); whether the next is sampled.
        A sampled step that ended chooses the interval again from the cost measured so far
        (so the step before the next sample is the one that interval names)."""
        now = time.perf_counter()
        if step > LABEL_STEPS:
            took = now - self._t0
            if sampled:
                self._sampled_seconds += took
                self._sampled_steps += 1
            elif self._pre_own is not None:     # (its head ran on the span: own time)
                self._pre_own_seconds += own - self._pre_own
                self._pre_own_steps += 1
            elif self._before_sample:
                self._pre_seconds += took
                self._pre_steps += 1
            else:
                self._lean_seconds += took
                self._lean_steps += 1
        self._t0 = now
        self._before_sample = False
        self._pre_own = None
        if self.adaptive and sampled:
            self._adapt(step)
        return step % self.interval == 0

    def account(self, steps: int) -> None:
        """Time ``steps`` steady steps that ended on the hot path (``steady.Span``)."""
        if not steps:
            return
        now = time.perf_counter()
        self._lean_seconds += now - self._t0
        self._lean_steps += steps
        self._t0 = now

    def steady_until(self, ctx: Any) -> tuple[int, bool]:
        """The first step after ``ctx.step``, a steady one, that ``kind`` would not keep
        steady: the step before a sampled one, or (BatchNorm) two batches before the
        epoch ends; and whether it is the step before a sampled one. Until then, only a
        flush or something irregular changes a step."""
        s, iv = ctx.step, self.interval
        until = before = ((s + 1) // iv + 1) * iv - 1
        left = ctx.epoch_left
        if left is not None and any(e.batchnorm for e in ctx.models):
            until = min(until, s + left - (EPOCH_ROOM - 1))   # (``_room`` fails there)
        return until, until == before

    def _adapt(self, step: int) -> None:
        """Sample less often while sampled steps cost more than SAMPLED_BUDGET of a step."""
        if self._sampled_steps < 2 or self._lean_steps < 5:
            return
        lean = self._lean_seconds / self._lean_steps
        extra = self._sampled_seconds / self._sampled_steps - lean
        pre = self._pre_steps + self._pre_own_steps
        if pre:                     # the step before each, hooked for it, is its cost too
            extra += (max(0.0, self._pre_seconds - self._pre_steps * lean)
                      + self._pre_own_seconds) / pre
        base = self.every
        need = extra / (SAMPLED_BUDGET * lean) if lean > 0 else MAX_INTERVAL
        # never more than a MIN_SAMPLES-th of the run so far apart: short runs keep about
        # MIN_SAMPLES samples each time they double, past the budget (a sampled step
        # costs about two steps there)
        cap = max(base, min(MAX_INTERVAL, step // MIN_SAMPLES) // base * base)
        self.interval = int(min(cap, max(base, base * math.ceil(need / base))))

    def facts(self) -> dict[str, Any]:
        """How statistics were sampled: the base interval, and the one nbdebug settled on."""
        return {"every": self.every, "adaptive": self.adaptive, "interval": self.interval}

    def kind(self, ctx: Any, mode: str | None, shapes: Any) -> str:
        """The kind of the step that starts (``ctx.step``), and whether it is sampled
        (``ctx.sampled``). Full: the first steps, sampled ones, any before an optimizer
        stepped; steady: once the hooked steps have one simple shape, never the step before
        a sampled one nor two batches before an epoch ends; lean otherwise. On a steady
        step (started already) the answer is for the rest of it."""
        s = ctx.step
        sampled = self.next(s, ctx.sampled,
                            ctx.guard.own_now() if self._pre_own is not None else 0.0)
        sampled_next = self._before_sample = (s + 1) % self.interval == 0
        if mode == "steady" and not sampled:   # (sampled: its step before ran steady)
            ctx.sampled = False
            if sampled_next or not _room(ctx):
                return "full" if sampled_next else "lean"
            return "steady"
        ctx.sampled = sampled
        if sampled or s < FULL_STEPS or ctx.primary is None:
            return "full"
        if _steady_shape(ctx, shapes) and not sampled_next and _room(ctx):
            return "steady"
        return "lean"


def _steady_shape(ctx: Any, shapes: Any) -> bool:
    """The last hooked steps had one shape: one training forward, one backward, at most one
    batch, no held-out forward, the same optimizers stepping once each."""
    if ctx.step < LABEL_STEPS or len(shapes) < STEADY_AFTER or any(
            s != shapes[0] for s in shapes):
        return False
    forwards, backwards, batches, evals, updates, via = shapes[0]
    return (forwards == 1 and backwards == 1 and batches <= 1 and evals == 0
            and via == "tensor" and ctx.primary in updates
            and len(set(updates)) == len(updates))


def _room(ctx: Any) -> bool:
    """With BatchNorm, steady steps stop two batches before an epoch ends: its last,
    partial batch reaches BatchNorm on a lean step (point 12). Held-out passes after it
    wake the hooks themselves."""
    left = ctx.epoch_left
    return left is None or left >= EPOCH_ROOM or not any(e.batchnorm for e in ctx.models)


class Flushes:
    """When the pending values go to the host: every ``window`` steps, a multiple of
    FLUSH_EVERY doubled while flushes cost more than FLUSH_BUDGET of the training's time.
    ``fixed``: every FLUSH_EVERY steps (a multi-rank run publishes at those steps)."""

    def __init__(self) -> None:
        self.window = FLUSH_EVERY
        self.fixed = False
        self._seconds = 0.0         # time of the flushes so far, and their count
        self._count = 0

    @property
    def steps(self) -> int:
        """Steps between two flushes on the step count, now."""
        return FLUSH_EVERY if self.fixed else self.window

    def due(self, step: int, held: int = 0) -> bool:
        """Is a flush due after ``step`` steps, with ``held`` values in the buffer?"""
        return step % self.steps == 0 or held >= FLUSH_ITEMS

    def after(self, step: int) -> int:
        """The first step after ``step`` at which a flush is due."""
        return (step // self.steps + 1) * self.steps

    def flushed(self, took: float, steps: int, training: float) -> None:
        """A flush took ``took`` seconds after ``steps`` steps, which took ``training``
        seconds (flushes not counted): choose the window again."""
        self._seconds += took
        self._count += 1
        if steps <= 0 or training <= 0:
            return
        per_step = training / steps
        flush = self._seconds / self._count
        w = FLUSH_EVERY
        while w < MAX_WINDOW and flush > FLUSH_BUDGET * w * per_step:
            w *= 2
        self.window = min(w, MAX_WINDOW)
