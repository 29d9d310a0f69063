"""When steps take statistics, which kind each step is (full, light, lean or steady), and
when the device values go to the host.

Statistics every ``interval`` steps, the interval stretched while sampled steps would cost
more than ``SAMPLED_BUDGET`` of the training's own time; between them, light samples keep
``MIN_SAMPLES`` samples each time the run doubles (``light``); flushes every ``window``
steps, stretched while a flush would cost more than ``FLUSH_BUDGET``, and MAX_WINDOW from
the start when no live view watches (``Flushes``)."""

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
#: doubles: fewer lose corpus verdicts); those the budget leaves out are light samples:
#: the training accuracy, the activations' shares (saturated, alive) and the update's
#: gradient norms and ratios (the checks that read the last third of a run, the stuck
#: loss's causes, find them there) ...
MIN_SAMPLES = 5
#: ... past this many full ones each time the run doubles (the layers' summaries, the
#: loss's ranges and labels: read over the whole run)
MIN_FULL = 1
#: the kinds of a sampled step: every statistic, or a light one (``MIN_SAMPLES``)
FULL, LIGHT = 1, 2
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
        #: the step of the next full sample (the last one's plus ``interval``), and from
        #: which a light sample is due (the last sample's plus ``light``)
        self._full_at = 0
        self._light_at = every
        self.light = every
        #: the kind of sample of the step running now (0: none), and of the next step
        self.running = 0
        self._next = 0
        self.started = self._t0 = time.perf_counter()
        self._sampled_seconds = 0.0       # own time on sampled steps, and their count
        self._sampled_steps = 0
        self._lean_seconds = 0.0          # time of lean steps, and their count
        self._lean_steps = 0
        #: time of the steps before sampled ones (hooked for the sample: part of its
        #: cost), and their count
        self._pre_seconds = 0.0
        self._pre_steps = 0
        #: the light samples (and the steps before them), kept out of the lean steps' time
        self.light_steps = 0
        self.light_seconds = 0.0
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

    def next(self, step: int, own: float = 0.0, more: bool = False) -> int:
        """Time the step that ended (``step`` steps so far); the kind of sample of the next
        (0: none). A sampled step that ended chooses the intervals again from the cost
        measured so far (so the step before the next sample is the one they name);
        ``more``: its statistics want the next step's too (a light sample is due)."""
        now = time.perf_counter()
        ended, before = self.running, self._next
        if step > LABEL_STEPS:
            took = now - self._t0
            if ended == FULL:
                self._sampled_seconds += took
                self._sampled_steps += 1
            elif self._pre_own is not None:     # (its head ran on the span: own time)
                self._pre_own_seconds += own - self._pre_own
                self._pre_own_steps += 1
            elif ended == LIGHT or before == LIGHT:
                self.light_steps += ended == LIGHT
                self.light_seconds += took
            elif before:
                self._pre_seconds += took
                self._pre_steps += 1
            else:
                self._lean_seconds += took
                self._lean_steps += 1
        self._t0 = now
        self._pre_own = None
        self._next = 0
        if self.adaptive and ended:
            self._adapt(step)
        if ended:
            self._sampled(step - 1, ended)
        if more:
            self._light_at = min(self._light_at, step)
        return self.sample_at(step)

    def _sampled(self, step: int, kind: int) -> None:
        """A sample was taken at step ``step``: plan the next ones."""
        if kind == FULL:
            self._full_at = step + self.interval
        self._light_at = step + self.light

    def sample_at(self, step: int) -> int:
        """The kind of sample of step ``step`` (0: none). A light sample is due from
        ``_light_at`` on: one that a span could not take is taken at its next chance."""
        if step >= self._full_at and step % self.every == 0:
            return FULL
        return LIGHT if step >= self._light_at else 0

    def light_after(self, step: int) -> int:
        """The first step from ``step`` on that is due for a light sample (0: a full sample
        comes first, which takes the light statistics too)."""
        k = max(self._light_at, step)
        return k if self.sample_at(k) == LIGHT else 0

    def light_done(self, step: int, more: bool = False) -> int:
        """A light sample was taken on a steady span at step ``step`` (its cost is the
        span's): the step from which the next is due (``more``: the next step)."""
        self.light_steps += 1
        if self.adaptive:
            self._adapt(step + 1)
        self._sampled(step, LIGHT)
        if more:
            self._light_at = step + 1
        return self._light_at

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
        s, base = ctx.step, self.every
        until = before = -(-max(self._full_at, s + 2) // base) * base - 1
        left = ctx.epoch_left
        if left is not None and any(e.batchnorm for e in ctx.models):
            until = min(until, s + left - (EPOCH_ROOM - 1))   # (``_room`` fails there)
        return until, until == before

    def _adapt(self, step: int) -> None:
        """Sample less often while sampled steps cost more than SAMPLED_BUDGET of a step;
        light samples keep MIN_SAMPLES each time the run doubles."""
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

        def cap(samples: int) -> int:
            return max(base, min(MAX_INTERVAL, step // samples) // base * base)
        # never more than a MIN_FULL-th of the run so far apart, past the budget (a full
        # sample costs about two steps on short runs of cheap steps); light samples
        # between them keep MIN_SAMPLES each time the run doubles
        self.interval = int(min(cap(MIN_FULL), max(base, base * math.ceil(need / base))))
        self.light = min(cap(MIN_SAMPLES), self.interval)

    def facts(self) -> dict[str, Any]:
        """How statistics were sampled: the base interval, and the one nbdebug settled on."""
        return {"every": self.every, "adaptive": self.adaptive, "interval": self.interval,
                "light_interval": self.light, "light_samples": self.light_steps}

    def kind(self, ctx: Any, mode: str | None, shapes: Any) -> str:
        """The kind of the step that starts (``ctx.step``), and whether it is sampled
        (``ctx.sampled``). Full: the first steps, sampled
        ones, any before an optimizer stepped; light: light samples; steady: once the
        hooked steps have one simple shape, never the step before a sampled one nor two
        batches before an epoch ends; lean otherwise. On a steady step (started already)
        the answer is for the rest of it."""
        s = ctx.step
        more, ctx.light_more = ctx.light_more, False
        sampled = self.next(s, ctx.guard.own_now() if self._pre_own is not None else 0.0,
                            more)
        early = s < FULL_STEPS or ctx.primary is None     # (full, whatever its sample)
        after = self._next = self.sample_at(s + 1)
        if mode == "steady" and sampled == LIGHT:
            sampled = 0         # (begun steady: a span takes light samples, or none does)
        self.running = sampled
        ctx.sampled = sampled != 0
        if mode == "steady" and not sampled:   # (sampled: its step before ran steady)
            if after == FULL or not _room(ctx):
                return "full" if after == FULL else "lean"
            return "steady"
        if sampled == FULL or early:
            return "full"
        if _steady_shape(ctx, shapes) and after != FULL and _room(ctx):
            if sampled:         # (a light one: the span takes it, resumed armed)
                self.running = 0
                ctx.sampled = False
            return "steady"
        return "light" if sampled else "lean"


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

    def unwatched(self) -> None:
        """No live view reads the values as they come: the first flush waits MAX_WINDOW
        steps too (the report reads them at the end; a NaN is still found at its own step,
        and held values or a NaN replay's window half full still flush sooner)."""
        self.window = MAX_WINDOW

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
