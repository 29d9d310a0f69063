"""What nbdebug costs the run it watches, as the wall clock would show it.

The clock inside each hook and wrapper body (``Guard.own_seconds``) misses what happens
around it: the call into the hook, torch taking the slower path of a module that has
hooks, the wrapper's own frame. ``calibrate`` measures that per call once, on a module
and a function of nbdebug's own (no user tensor touched, no random number drawn), and
``Cost`` adds it per call counted, plus the time nbdebug spends starting and ending.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

#: calls per measurement, and measurements (the least is kept: what stays put on a busy
#: machine)
CALLS = 100
ROUNDS = 3
#: one calibration per process: the first diagnosis pays its few milliseconds
_CALIBRATED: list[tuple[float, float]] = []


class _Echo(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _least(fn: Any) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / CALLS


def calibrate(guard_type: Any, hook_type: Any) -> tuple[float, float]:
    """Seconds one hooked module call and one wrapped function call add, beyond the body
    (measured once per process)."""
    if not _CALIBRATED:
        _CALIBRATED.append(_measure(guard_type, hook_type))
    return _CALIBRATED[0]


def _measure(guard_type: Any, hook_type: Any) -> tuple[float, float]:
    from ..errors import ErrorLog
    guard = guard_type(ErrorLog())
    module, x = _Echo(), torch.zeros(1)

    def noop(*args: Any) -> None:
        return None

    with torch.no_grad():
        bare = _least(lambda: module(x))
        handle = module.register_forward_hook(hook_type(guard.hook(noop)))
        try:
            hooked = _least(lambda: module(x))
        finally:
            handle.remove()
    plain = _least(noop)
    wrapped_fn = guard.wrap(noop, "calibration", before=lambda a, k: None)
    wrapped = _least(wrapped_fn)
    body = guard.own_seconds / (2 * ROUNDS * CALLS)       # what the bodies' clocks saw
    return max(0.0, hooked - bare - body), max(0.0, wrapped - plain - body)


class Cost:
    """nbdebug's share of the run so far: its time against the rest of the run's."""

    def __init__(self) -> None:
        self.per_hook = 0.0
        self.per_wrap = 0.0
        #: seconds spent starting (calibration included) and ending the diagnosis
        self.fixed = 0.0
        #: what the hooked steps cost per second of the clock inside their hooks (measured
        #: against the steady steps on a CPU, ``Sampling.clock_scale``), and the seconds of
        #: that clock spent on steady steps' hot path (not scaled)
        self.scale = 1.0
        self.steady_own = 0.0
        #: seconds of that clock spent flushing (and in the live views it feeds): plain
        #: Python and numpy between steps, not scaled either
        self.flushes = 0.0

    def seconds(self, guard: Any) -> float:
        plain = self.steady_own + self.flushes
        hooked = max(0.0, guard.own_seconds - plain)
        return (hooked * self.scale + plain + guard.hook_calls * self.per_hook
                + guard.wrap_calls * self.per_wrap + self.fixed)

    def share(self, guard: Any, elapsed: float) -> float | None:
        own = self.seconds(guard)
        rest = elapsed - own
        return own / rest if rest > 0 else None
