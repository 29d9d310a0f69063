"""Helpers the timeline checks share: finite values, windows, loss shape, classes."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..observations import Observations, ParamInfo
from .shared import once

#: losses whose first value can be compared with ln(C)
CLASSIFICATION_LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy_with_logits",
                         "binary_cross_entropy")


def finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def window(n: int) -> int:
    """Points in a head/tail window of a timeline of ``n`` points."""
    return max(5, n // 10)


@dataclass
class LossShape:
    """The loss timeline summarised: head, tail and best windows (means of finite values)."""
    steps: list[int]
    values: list[float]
    first: float
    last: float
    best: float
    spread: float             # std / |mean| of the tail window
    tail_start: int           # step where the tail window starts

    @property
    def no_progress(self) -> bool:
        return self.last >= 0.98 * self.first


def loss_shape(obs: Observations, min_points: int = 10) -> LossShape | None:
    """The loss timeline's shape when it holds ``min_points`` finite values at least."""
    shape = once(("loss_shape", id(obs)), lambda: _loss_shape(obs))
    return shape if shape is not None and len(shape.values) >= min_points else None


def _loss_shape(obs: Observations) -> LossShape | None:
    s = obs.timelines.get("loss")
    if s is None:
        return None
    pairs = [(st, float(v)) for st, v in zip(s.steps, s.values)
             if isinstance(v, float) and math.isfinite(v)]
    if len(pairs) < window(0):          # (fewer than a window: no head, tail nor best)
        return None
    steps = [p[0] for p in pairs]
    values = [p[1] for p in pairs]
    w = window(len(values))
    hop = max(1, w // 2)
    means = [statistics.fmean(values[i:i + w]) for i in range(0, len(values) - w + 1, hop)]
    tail = values[-w:]
    last = statistics.fmean(tail)
    # (numpy's std: statistics.pstdev sums exact fractions, ten times slower)
    return LossShape(steps, values, statistics.fmean(values[:w]), last, min(means),
                     float(np.std(tail)) / (abs(last) + 1e-30), steps[-w])


def classes(obs: Observations) -> int | None:
    """Number of classes of a classification loss (2 for binary), or None."""
    for call in obs.losses:
        if call.fn not in CLASSIFICATION_LOSSES:
            continue
        if call.fn.startswith("binary"):
            return 2
        if call.input_shape and len(call.input_shape) >= 2 and call.input_shape[1] >= 2:
            return int(call.input_shape[1])
    return None


def columns(obs: Observations, key: str) -> tuple[list[int], list[str], list[list[float]]]:
    """(steps, column names, rows) of a per-column series; empty when missing."""
    s = obs.timelines.get(key)
    if s is None or not len(s):
        return [], [], []
    width = max(len(r) if isinstance(r, list) else 1 for r in s.values)
    cols = list(s.columns or []) + [f"column{j}" for j in range(len(s.columns or []), width)]
    rows = [(list(r) if isinstance(r, list) else [r]) for r in s.values]
    rows = [r + [math.nan] * (len(cols) - len(r)) for r in rows]
    return list(s.steps), cols, rows


def column(rows: list[list[float]], j: int) -> list[float]:
    return finite([r[j] for r in rows])


def params(obs: Observations) -> dict[str, ParamInfo]:
    return {p.name: p for m in obs.models for p in m.params}


def weight_columns(obs: Observations, cols: list[str]) -> list[int]:
    """Indices of the columns that are weight matrices/kernels (2-D or more); all columns
    when the parameters are not described."""
    info = params(obs)
    if not any(c in info for c in cols):
        return list(range(len(cols)))
    return [j for j, c in enumerate(cols) if c in info and info[c].ndim >= 2]


def lrs(obs: Observations) -> dict[str, list[float]]:
    """First and last learning rate of each optimizer group: {"opt group 0": [first, last]}."""
    out: dict[str, list[float]] = {}
    for key, s in obs.timelines.items():
        if not key.startswith("lr/") or not len(s):
            continue
        i = int(key[3:])
        name = obs.optimizers[i].name if i < len(obs.optimizers) else f"optimizer{i}"
        for g, (a, b) in enumerate(zip(s.values[0], s.values[-1])):
            out[f"{name} group {g}"] = [a, b]
    return out


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


#: the tail of the loss above this multiple of its best window has diverged
DIVERGE = 3.0
#: one loss value this many times the median of the window before it is a spike
SPIKE = 10.0
#: a spike this many times the window median is "by orders of magnitude"
BIG_SPIKE = 100.0
#: a spike must also rise by this share of the first loss: near-zero losses jitter by 10x
SPIKE_FLOOR = 0.5


def diverged(shape: LossShape) -> bool:
    """The loss ends far above its best window or its first value, and above the start."""
    start = shape.values[0]
    return (shape.last >= DIVERGE * max(min(shape.best, start), 1e-12)
            and shape.last > min(shape.first, start))


def spikes(shape: LossShape) -> list[tuple[int, float, float]]:
    """(step, value, factor over the preceding window's median) of each loss spike."""
    out: list[tuple[int, float, float]] = []
    v = shape.values
    w = window(len(v))
    if len(v) <= w:
        return out
    # the w values before each point, all at once; a median is at least the window's
    # minimum, so only the points that pass against the minimum can pass against the
    # median: the medians (a partition of each window) are taken for those alone
    arr = np.asarray(v, dtype=float)
    wins = np.lib.stride_tricks.sliding_window_view(arr[:-1], w)
    cur = arr[w:]
    lo = wins.min(axis=1)
    floor = SPIKE_FLOOR * abs(shape.first)
    cand = np.flatnonzero((cur >= SPIKE * lo) & (cur - lo >= floor))
    if not len(cand):
        return out
    refs = np.median(wins[cand], axis=1).tolist()
    for j, ref in zip(cand.tolist(), refs):
        i = j + w
        if ref > 0 and v[i] >= SPIKE * ref and v[i] - ref >= floor:
            out.append((shape.steps[i], v[i], v[i] / ref))
    return out
