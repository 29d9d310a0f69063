"""What nbdebug costs the run it watches, as the wall clock would show it.

The clock inside each hook and wrapper body (``Guard.own_seconds``) misses what happens
around it: the call into the hook, torch taking the slower path of a module that has
hooks, the wrapper's own frame. ``calibrate`` measures that per call once, on a small
training step of nbdebug's own (no user tensor touched, no random number drawn), and
``Cost`` adds it per call counted, plus the time nbdebug spends starting and ending. On a
CPU, ``SpanClock`` measures what the hooked steps cost beyond that clock.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

#: calls per measurement, and measurements of each kind, taken in turn (the median of
#: their differences is kept: what stays put on a busy machine)
CALLS = 10
ROUNDS = 10
#: one calibration per process: the first diagnosis pays its ~15 milliseconds
_CALIBRATED: list[tuple[float, float, float]] = []


class _Tiny(nn.Module):
    """A training step of nbdebug's own to time the interception points on: a hook or a
    wrapper costs several times more between a forward and a backward than in a loop of
    bare calls, which keeps all of it in the caches."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.full((4, 4), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.w)


def calibrate(guard_type: Any, hook_type: Any) -> tuple[float, float, float]:
    """Seconds one hooked module call, one module call through a ``rootcall.RootCall``
    and one wrapped ``Tensor.backward`` call add to a training step, beyond their bodies
    (measured once per process)."""
    if not _CALIBRATED:
        with torch.inference_mode(False), torch.enable_grad():
            _CALIBRATED.append(_measure(guard_type, hook_type))
    return _CALIBRATED[0]


def _measure(guard_type: Any, hook_type: Any) -> tuple[float, float, float]:
    from ..errors import ErrorLog
    from .rootcall import RootCall
    guard = guard_type(ErrorLog())
    module, x = _Tiny(), torch.ones(2, 4)
    backward = torch.Tensor.backward
    wrapped = guard.wrap(backward, "calibration", before=lambda a, k: None, reentrant=False)
    hook = hook_type(guard.hook(lambda *args: None))

    def bare() -> None:
        backward(module(x).sum())
        module.w.grad = None

    def bare_calls() -> None:
        for _ in range(CALLS):
            bare()

    def hooked() -> None:
        handle = module.register_forward_hook(hook)
        try:
            bare_calls()
        finally:
            handle.remove()

    def through_root() -> None:
        handle = RootCall(module, hook, guard)
        try:
            bare_calls()
        finally:
            handle.remove()

    def through_wrapper() -> None:
        for _ in range(CALLS):
            wrapped(module(x).sum())
            module.w.grad = None

    kinds = {"bare": bare_calls, "hooked": hooked, "root": through_root,
             "wrapped": through_wrapper}
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    body = dict.fromkeys(kinds, 0.0)              # what the bodies' clocks saw
    for _ in range(ROUNDS):                       # in turn: a slow spell hits all kinds
        for kind, run in kinds.items():
            own, t0 = guard.own_seconds, time.perf_counter()
            run()
            times[kind].append(time.perf_counter() - t0)
            body[kind] += guard.own_seconds - own
    calls = ROUNDS * CALLS

    step = min(times["bare"]) / CALLS

    def extra(kind: str) -> float:
        # the median of each round's difference from its bare neighbour: a busy spell
        # slows one round of both, where the least of each could come from different ones;
        # at most a whole bare step (a machine busy through most rounds)
        diffs = sorted(t - b for t, b in zip(times[kind], times["bare"]))
        return min(step, max(0.0, diffs[len(diffs) // 2] / CALLS - body[kind] / calls))
    return extra("hooked"), extra("root"), extra("wrapped")


#: step periods timed on both sides before the hooked steps' time corrects nbdebug's clock
#: (``SpanClock.scale``), and the most that correction multiplies the clock by
MIN_TIMED = 5
MAX_SCALE = 2.0


class SpanClock:
    """What the hooked steps cost beyond what nbdebug's clock saw of them, on a CPU.

    Around a hooked step, Python runs more of nbdebug's code than its clock holds (the
    calls into the hooks, torch's slower path for hooked modules, colder caches), and a
    steady step is the only bare-like step inside the run to compare with. So the run is
    cut where steady spans (``steady.Span``) open and close, at the forwards that begin
    steps: a span's time over its step periods is a steady step's; the time between a
    span's close and the next one's opening, less that many steady steps, is what the
    hooked steps between them cost, of which the clock saw ``own``. A stretch where
    anything but training steps ran (a held-out pass: ``spoil``) is not compared, nor are
    the first steps before any span: their time is not all nbdebug's."""

    def __init__(self) -> None:
        self.steady = [0.0, 0]               # seconds, step periods on spans
        self.hooked = [0.0, 0, 0.0]          # seconds, step periods, own seconds between
        self._opened: tuple[float, int] | None = None          # time, step
        self._closed: tuple[float, float, int] | None = None   # time, own seconds, step

    def opened(self, now: float, own: float, step: int) -> None:
        """A span opened on ``step`` (its forward has run); nbdebug's clock read ``own``."""
        if self._closed is not None:
            t, o, s = self._closed
            if step > s:
                h = self.hooked
                h[0] += now - t
                h[1] += step - s
                h[2] += own - o
        self._closed = None
        self._opened = (now, step)

    def closed(self, now: float, own: float, step: int, at_forward: bool) -> None:
        """The open span closed; ``at_forward``: at the forward that begins ``step``
        (elsewhere the periods are not whole: nothing of it is compared)."""
        if self._opened is not None and at_forward:
            t, s = self._opened
            if step > s:
                self.steady[0] += now - t
                self.steady[1] += step - s
        self._opened = None
        self._closed = (now, own, step) if at_forward else None

    def spoil(self) -> None:
        """Something else than training steps runs before the next span (a held-out pass)."""
        self._closed = None

    def exclude(self, seconds: float) -> None:
        """``seconds`` of nbdebug's between steps that are not a step's cost (a flush)."""
        if self._closed is not None:
            t, o, s = self._closed
            self._closed = (t + seconds, o + seconds, s)

    def scale(self) -> float:
        """The hooked steps' time beyond steady steps', over the clock's share of it (1 to
        ``MAX_SCALE``; 1 until both were timed over enough steps)."""
        seconds, periods, own = self.hooked
        steady_seconds, steady_periods = self.steady
        if periods < MIN_TIMED or steady_periods < 4 * MIN_TIMED or own <= 0:
            return 1.0
        extra = seconds - periods * steady_seconds / steady_periods
        return min(MAX_SCALE, max(1.0, extra / own))


class Cost:
    """nbdebug's share of the run so far: its time against the rest of the run's."""

    def __init__(self) -> None:
        self.per_hook = 0.0
        self.per_root = 0.0
        self.per_wrap = 0.0
        #: seconds spent starting (calibration included) and ending the diagnosis
        self.fixed = 0.0
        #: what the hooked steps cost per second of the clock inside their hooks (measured
        #: against the steady steps on a CPU, ``SpanClock.scale``), and the seconds of that
        #: clock spent on steady steps' hot path (not scaled)
        self.scale = 1.0
        self.steady_own = 0.0
        #: seconds of that clock spent flushing (and in the live views it feeds): plain
        #: Python and numpy between steps, not scaled either
        self.flushes = 0.0

    def seconds(self, guard: Any) -> float:
        plain = self.steady_own + self.flushes
        hooked = max(0.0, guard.own_seconds - plain)
        return (hooked * self.scale + plain + guard.wrap_calls * self.per_wrap
                + (guard.hook_calls - guard.root_calls) * self.per_hook
                + guard.root_calls * self.per_root + self.fixed)

    def share(self, guard: Any, elapsed: float) -> float | None:
        own = self.seconds(guard)
        rest = elapsed - own
        return own / rest if rest > 0 else None
