"""The plots' per-parameter and per-layer panels: the gradient-norm heatmap, the spread of
update/weight ratios, the last activation sample, on a ``frame.Axes``. Drawn by
``plots.render_png``; the helpers they share live there and in ``axes``."""

from __future__ import annotations

import math
from typing import Any

import functools

import numpy as np

from .axes import (DOTTED, MAX_ROWS, UPDATE_RATIO_GUIDE, _empty, _legend, _mark, _short,
                   _thin, apply_scale, mark_outside, robust_limits)
from .ticks import nice_ticks, number

ZERO, BAD = (0, 0, 0), (229, 57, 53)        # a zero gradient black, NaN/Inf red


def _matrix(s: dict[str, Any]) -> tuple[list[str], list[int], np.ndarray]:
    cols = list(s.get("columns") or [])
    rows = [list(r) + [math.nan] * (len(cols) - len(r)) for r in s["values"]]
    data = np.array([[_f(v) for v in r[:len(cols)]] for r in rows], dtype=float)
    return cols, list(s["steps"]), data.reshape(len(rows), len(cols))


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@functools.lru_cache(maxsize=1)
def _viridis() -> np.ndarray:
    """matplotlib's viridis as 256 RGB rows (uint8)."""
    import matplotlib
    return (matplotlib.colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5
            ).astype(np.uint8)


def _edges(steps: list[int]) -> np.ndarray:
    """Each sampled step's column, from half way to the step before to half way to the
    next (the first and last half a step wide outwards)."""
    x = np.asarray(steps, dtype=float)
    if len(x) < 2:
        return np.array([x[0] - 0.5, x[0] + 0.5])
    mids = (x[:-1] + x[1:]) / 2
    return np.concatenate([[x[0] - 0.5], mids, [x[-1] + 0.5]])


def plot_grad_heatmap(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    """log10 of each parameter's gradient norm, each sample at its step; exact zeros
    black, NaN/Inf red (never the blank background)."""
    ax.title = "log10 gradient norm (black: 0, red: NaN)"
    s = tl.get("grad_norm")
    if not (s and s["steps"] and s.get("columns")):
        _empty(ax, "no gradients seen yet")
        return
    cols, steps, data = _matrix(s)
    keep = _thin(cols, MAX_ROWS)
    data = data[:, keep].T
    positive = data[np.isfinite(data) & (data > 0)]
    logv = np.full(data.shape, math.nan)
    np.log10(data, out=logv, where=np.isfinite(data) & (data > 0))
    vmin, vmax = ((float(np.log10(positive.min())), float(np.log10(positive.max())))
                  if positive.size else (-1.0, 1.0))
    vmax = max(vmax, vmin + 1e-6)
    lut = _viridis()
    idx = np.clip(np.nan_to_num((logv - vmin) / (vmax - vmin) * len(lut)), 0, len(lut) - 1)
    colors = lut[idx.astype(int)]
    colors[data == 0] = ZERO
    colors[~np.isfinite(logv) & (data != 0)] = BAD
    order = np.argsort(steps, kind="stable")
    ax.image(colors[:, order], _edges([steps[i] for i in order]))
    ax.set_yticks(range(len(keep)), [_short(cols[i]) for i in keep], size=7)
    ax.xlabel = "step"
    # whole powers when the range spans three or more (a tick at -0.5 printed whole read
    # "-0", and -2.5 "-2" beside -2)
    ticks, step = nice_ticks(vmin, vmax, 6, integer=vmax - vmin >= 3)
    ax.colorbar(lut, vmin, vmax, [(float(v), number(v, step)) for v in ticks])
    _mark(ax, marks, text=False)


def plot_activations(ax: Any, tl: dict[str, Any]) -> None:
    ax.title = "activations"
    layers = [(k[4:], s) for k, s in tl.items() if k.startswith("act/") and s["values"]]
    if not layers:
        _empty(ax, "no activations sampled yet")
        return
    keep = [layers[i] for i in _thin(layers, MAX_ROWS)]
    names = [_short(n) for n, _ in keep]
    stats = []
    for _, s in keep:
        cols = list(s.get("columns") or [])
        row = s["values"][-1]
        get = (lambda c, cols=cols, row=row: _f(row[cols.index(c)]) if c in cols else math.nan)
        stats.append((get("mean"), get("std"), get("zero_frac")))
    y = np.arange(len(keep))
    arr = np.array(stats, dtype=float).reshape(len(keep), 3)
    h = 0.27
    ax.barh(y - h, arr[:, 0], h, color="#1565c0", label="mean")
    ax.barh(y, arr[:, 1], h, color="#2e7d32", label="std")
    ax.barh(y + h, arr[:, 2], h, color="#c62828", label="zeros")
    ax.set_yticks(y, names, size=7)
    ax.invert_yaxis()
    ax.axvline(0, "#999999", lw=0.6)
    ax.xlabel = "last sample"
    _legend(ax, right=True)


def plot_update_ratio(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    """The spread of update/weight ratios over parameters: median and min..max."""
    ax.ylabel = "update / weight"
    s = tl.get("update_ratio")
    if not (s and s["steps"] and s.get("columns")):
        _empty(ax, "no optimizer steps sampled yet")
        return
    _, steps, data = _matrix(s)
    data = np.where(np.isfinite(data) & (data > 0), data, np.nan)
    rows = np.isfinite(data).any(axis=1)
    if not rows.any():
        _empty(ax, "updates are all zero")
        return
    x = np.asarray(steps, dtype=float)[rows]
    part = data[rows]
    low, mid, high = (np.nanmin(part, axis=1), np.nanmedian(part, axis=1),
                      np.nanmax(part, axis=1))
    ax.fill_between(x, low, high, color="#90caf9", alpha=0.6,
                    label="min..max of parameters")
    ax.plot(x, mid, color="#1565c0", lw=1.4, label="median")
    ax.axhline(UPDATE_RATIO_GUIDE, "#757575", lw=1, dashes=DOTTED, label="1e-3 guide")
    values = np.concatenate([low, high, [UPDATE_RATIO_GUIDE]])
    apply_scale(ax, "log", values)
    limits = robust_limits(values, "log")
    if limits is not None:
        mark_outside(ax, x, high, limits)
    ax.xlabel = "step"
    _mark(ax, marks, text=False)
    _legend(ax)
