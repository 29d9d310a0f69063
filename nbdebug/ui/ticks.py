"""Tick values and labels for the plots' axes: round steps on a linear axis, powers of ten
on a log one, both on a symlog one; labels with the decimals the step needs."""

from __future__ import annotations

import math

import numpy as np

MINUS = "\u2212"


def nice_ticks(low: float, high: float, bins: int, integer: bool = False
               ) -> tuple[np.ndarray, float]:
    """At most ``bins + 1`` round values in [low, high] (steps of 1, 2, 2.5 or 5 times a
    power of ten), and the step."""
    span = high - low
    if not (math.isfinite(span) and span > 0):
        return np.array([low]), 1.0
    raw = span / bins
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    ticks = np.arange(first, last + 1) * step
    return np.where(np.abs(ticks) < step * 1e-9, 0.0, ticks), step


def number(value: float, step: float) -> str:
    """A tick's label: as many decimals as the step needs, a true minus sign."""
    value += 0.0                         # (never "-0")
    if abs(value) >= 1e5 or step < 1e-4:         # the digits that tell it from the next
        digits = math.floor(math.log10(max(abs(value), step))) - math.floor(math.log10(step))
        text = f"{value:.{max(1, digits + 2)}g}"
    else:
        decimals = max(0, -math.floor(math.log10(step) + 1e-9))
        if abs(round(step, decimals) - step) > step * 1e-6:     # 2.5 (0.25, ...): one more
            decimals += 1
        text = f"{value:.{decimals}f}"
    return text.replace("-", MINUS)


def log_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """Powers of ten in [low, high] (every k-th when there are many), or 1-2-5 steps
    when fewer than two powers fall inside."""
    lo, hi = math.ceil(math.log10(low) - 1e-9), math.floor(math.log10(high) + 1e-9)
    if hi - lo + 1 >= 2:
        stride = math.ceil((hi - lo + 1) / most)
        return [10.0 ** k for k in range(hi, lo - 1, -stride)][::-1]
    out = [m * 10.0 ** k for k in range(lo - 1, hi + 1) for m in (1, 2, 5)]
    return [v for v in out if low <= v * (1 + 1e-9) and v <= high * (1 + 1e-9)]


def symlog_ticks(low: float, high: float, linthresh: float) -> list[float]:
    """0 and powers of ten (both signs, from ``linthresh`` up; every k-th when there are
    many) between ``low`` and ``high``, given on the symlog scale."""
    def value(t: float) -> float:
        return float(np.sign(t) * linthresh * (10 ** abs(t) - 1))

    def scaled(v: float) -> float:
        return float(np.sign(v) * np.log10(1 + abs(v) / linthresh))
    top = max(abs(value(low)), abs(value(high)))
    mags = [10.0 ** k for k in range(math.floor(math.log10(linthresh)),
                                     math.floor(math.log10(top)) + 1)] if top else []
    stride = max(1, math.ceil(len(mags) / 3))
    vals = [0.0] + [s * m for m in mags[::-1][::stride] for s in (1, -1)]
    return [v for v in sorted(vals) if low <= scaled(v) <= high]
