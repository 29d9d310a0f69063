"""Axis helpers for the plots: the scale a series needs, robust limits, and marks for the
values a limit leaves out (spikes, NaN/Inf, zeros), so one outlier never flattens a curve.

Plain numpy, no state: each helper takes the panel (``frame.Axes``) it draws on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LOG_RANGE = 100.0        # a positive series spanning more than this is drawn on a log scale
ROBUST_LOW, ROBUST_HIGH = 1.0, 99.0   # percentiles that set the limits of a noisy series
HEADROOM = 0.08          # share of the robust range added above and below
SPIKE = "#c62828"
MAX_ROWS = 24            # heatmap rows shown; more parameters are thinned evenly
MAX_LINES = 8            # update-ratio and activation series drawn; the rest are thinned
MAX_LABEL = 20           # characters of a parameter or layer name on an axis
UPDATE_RATIO_GUIDE = 1e-3   # the classic rule of thumb: updates ~1e-3 of the weights
MARK_COLORS = {"problem": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}
DASHED, DOTTED = (3.7, 1.6), (1.0, 1.65)    # matplotlib's "--" and ":", in line widths


def scale_for(values: np.ndarray) -> str:
    """'log' for a positive series spanning > LOG_RANGE, 'symlog' for one that also holds
    zeros or negatives with a wide range, else 'linear'."""
    finite = values[np.isfinite(values)]
    if finite.size < 2:
        return "linear"
    mag = np.abs(finite[finite != 0])
    if mag.size == 0 or mag.max() / max(mag.min(), 1e-300) <= LOG_RANGE:
        return "linear"
    return "log" if (finite >= 0).all() else "symlog"   # zeros: marked below a log axis


def robust_limits(values: np.ndarray, scale: str) -> tuple[float, float] | None:
    """Limits that hold the bulk of the series (its 1st..99th percentile, with headroom);
    None when the series has no finite value."""
    finite = values[np.isfinite(values)]
    if scale == "log":
        finite = finite[finite > 0]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [ROBUST_LOW, ROBUST_HIGH])
    # the whole range unless a value lies far outside the bulk: only those are spikes
    if scale == "log":
        span = math.log10(high) - math.log10(low) if low > 0 else 0.0
        far = max(span, 1.0)
        if finite.min() >= 10 ** (math.log10(low) - far):
            low = finite.min()
        if finite.max() <= 10 ** (math.log10(high) + far):
            high = finite.max()
    else:
        far = 3 * max(high - low, 1e-12)
        low = finite.min() if finite.min() >= low - far else low
        high = finite.max() if finite.max() <= high + far else high
    if scale == "log":
        lo, hi = math.log10(low), math.log10(high)
        pad = max(hi - lo, 0.5) * HEADROOM
        return 10 ** (lo - pad), 10 ** (hi + pad)
    pad = (high - low) * HEADROOM or max(abs(high) * 0.1, 1e-3)
    return float(low - pad), float(high + pad)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075"
                             "\u2076\u2077\u2078\u2079")


def power_label(value: float) -> str:
    """A log axis's tick label: a power of ten as 10 and a superscript in plain text,
    any other value as it prints."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    exponent = math.log10(abs(value))
    k = round(exponent)
    if abs(exponent - k) > 1e-9:
        return f"{value:g}"
    return ("\u2212" if value < 0 else "") + "10" + str(k).translate(_SUPERSCRIPT)


def apply_scale(ax: Any, scale: str, values: np.ndarray) -> None:
    if scale == "log":
        ax.set_yscale("log")
    elif scale == "symlog":
        finite = np.abs(values[np.isfinite(values) & (values != 0)])
        ax.set_yscale("symlog", float(np.percentile(finite, 5)) if finite.size else 1.0)


def mark_outside(ax: Any, steps: np.ndarray, values: np.ndarray,
                 limits: tuple[float, float]) -> list[str]:
    """Clip the axis to ``limits`` and mark what it leaves out: spikes as triangles at the
    edge, NaN/Inf as a band from the first one. Returns legend words for what was marked."""
    low, high = limits
    ax.set_ylim(low, high)
    said = []
    above = np.isfinite(values) & (values > high)
    below = np.isfinite(values) & (values < low)
    if above.any():
        ax.plot(steps[above], np.full(above.sum(), high), color=SPIKE, marker="^", ms=5,
                line=False, clip=False, label=f"spike (max {np.nanmax(values[above]):.3g})")
        said.append("spike")
    if below.any():
        zero = bool((values[below] == 0).all())
        ax.plot(steps[below], np.full(below.sum(), low), color=SPIKE, marker="v", ms=5,
                line=False, clip=False, label="exactly 0" if zero else "below the axis")
    bad = ~np.isfinite(values)
    if bad.any():
        first = steps[np.argmax(bad)]
        ax.axvspan(first, steps[-1] if steps[-1] > first else first + 0.5, SPIKE, 0.12,
                   label=f"NaN/Inf from step {int(first)}")
        said.append("nan")
    return said


def _short(name: str) -> str:
    """A name as a plot shows it: shortened from the left (the end says the most)."""
    name = str(name)
    return name if len(name) <= MAX_LABEL else "\u2026" + name[-(MAX_LABEL - 1):]


def _thin(items: list[Any], limit: int) -> list[int]:
    if len(items) <= limit:
        return list(range(len(items)))
    return sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, color="#777777", size=9)
    ax.no_ticks()


def _legend(ax: Any, ncol: int = 4, right: bool = False) -> None:
    """The legend above the data (where a time panel's name would be; the name is on the
    y axis), or right-aligned beside a short title: it covers nothing."""
    ax.legend(ncol=min(ncol, len(ax.handles)) or 1, right=right)


def _mark(ax: Any, marks: list[dict[str, Any]], text: bool = True) -> None:
    """Findings (problems and warnings) at the step they were seen: a dashed line,
    labelled with the point."""
    for m in marks:
        color = MARK_COLORS.get(m.get("severity", ""), "#555555")
        ax.axvline(m["step"], color, lw=1.1, dashes=DASHED)
        if text:
            ax.text(m["step"], 0.97, f" {m['point']}", color=color, size=8, data_x=True,
                    anchor="la")
