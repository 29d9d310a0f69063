"""The dashboard's plots: panels drawn on one raster canvas, rendered to PNG bytes.

Reads timelines in the report's form (``{name: {"steps", "values", "columns"}}``), so the
same code draws the live view (from Observations) and the final static report. Each panel
is a ``frame.Axes`` on a ``canvas.Canvas``: matplotlib's Agg lines and its font, without
its figure's objects (five panels take a few hundredths of a second, not a fifth).

Made to be read at notebook width: two panels a row at 96 dpi (text >= 11 px), legends
above the data, every time axis spanning the whole run and labelled, a log or symlog loss
axis when the loss spans more than 100x, limits that hold the bulk of a series with spikes
and NaN marked (``axes``), and a constant series (a fixed learning rate) stated in words
(``constant_facts``) instead of taking a panel. The PNG is palette-quantised: it is stored
in the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .axes import (MAX_LABEL, MAX_LINES, MAX_ROWS, MARK_COLORS,  # noqa: F401
                   UPDATE_RATIO_GUIDE, _empty, _legend, _mark, _short, _thin,
                   apply_scale, mark_outside, robust_limits, scale_for)
from .canvas import DPI, Canvas
from .frame import LEGEND_ROW, Axes

SMOOTHING = 0.9          # EMA weight of the past: smooths batch noise over ~10 steps
WIDTH = 10.0             # inches: 960 px at DPI, the width of a notebook's output area
ROW_HEIGHT = 2.7         # inches per row of two panels
LR_LOG_RANGE = 10.0      # a schedule spanning more than 10x is drawn on a log scale
LINE_POINTS = 800        # vertices of a drawn line (min and max of each bucket of steps)
LEFT, RIGHT, WSPACE, HSPACE = 0.13, 0.97, 0.42, 0.62   # the panels' grid (figure fractions;
                                                         # gaps: shares of a panel)


def timelines_of(obs: Any) -> dict[str, dict[str, Any]]:
    """Observations' live series in the report's form (no copies: read at once)."""
    out = {k: {"steps": s.steps, "values": s.values, "columns": s.columns}
           for k, s in list(obs.timelines.items())}
    for name, step, loss, acc in obs.extra.get("eval_running", []):
        key = f"eval/{name}"              # closed rounds are in the series, open ones here
        s = out.get(key)
        s = out[key] = ({"steps": list(s["steps"]), "values": list(s["values"]),
                         "columns": s["columns"]} if s else
                        {"steps": [], "values": [], "columns": None})
        s["steps"].append(step)
        s["values"].append({"loss": loss, "acc": acc})
    return out


def _floats(values: Iterable[Any]) -> np.ndarray:
    out = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return np.asarray(out, dtype=float)


def smooth(values: np.ndarray, weight: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average that skips non-finite values (they stay NaN)."""
    out = np.full(values.shape, math.nan)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(values):
        if math.isfinite(v):
            acc = weight * acc + (1 - weight) * v
            norm = weight * norm + (1 - weight)
            out[i] = acc / norm
    return out


def decimate(x: np.ndarray, y: np.ndarray, points: int = LINE_POINTS
             ) -> tuple[np.ndarray, np.ndarray]:
    """At most ~``points`` vertices for a line a few hundred pixels wide: each bucket keeps
    its lowest and highest value, in step order (spikes and dips survive), a bucket with no
    finite value stays a gap (two NaN points). Drawing 5,000 vertices costs ~5x drawing 800
    and shows nothing more. One numpy pass: the buckets are rows of a padded index (a
    short bucket repeats its last step, which changes neither its min nor its max)."""
    n = len(x)
    if n <= points:
        return x, y
    values = np.asarray(y, dtype=float)
    edges = np.linspace(0, n, points // 2 + 1).astype(int)
    starts, ends = edges[:-1], edges[1:]
    idx = np.minimum(starts[:, None] + np.arange(int((ends - starts).max())),
                     (ends - 1)[:, None])
    part = values[idx]
    finite = np.isfinite(part)
    rows = np.arange(len(idx))
    lo = idx[rows, np.where(finite, part, np.inf).argmin(1)]
    hi = idx[rows, np.where(finite, part, -np.inf).argmax(1)]
    gap = ~finite.any(1)
    first = np.where(gap, starts, np.minimum(lo, hi))
    second = np.where(gap, ends - 1, np.maximum(lo, hi))
    keep = np.stack([np.ones(len(idx), bool), gap | (lo != hi)], 1).reshape(-1)
    at = np.stack([first, second], 1).reshape(-1)[keep]
    return np.asarray(x)[at], np.where(np.repeat(gap, 2)[keep], math.nan, values[at])


def _evals(tl: dict[str, Any], key: str) -> list[tuple[str, list[int], np.ndarray]]:
    out = []
    for name, s in tl.items():
        if name.startswith("eval/") and s["values"] and isinstance(s["values"][0], dict):
            out.append((name[5:], list(s["steps"]), _floats(v.get(key) for v in s["values"])))
    return out


def _train_and_heldout(ax: Any, tl: dict[str, Any], title: str, key: str, eval_key: str,
                       empty: str, raw: tuple[str, str], smoothed: str,
                       cap: float = math.inf) -> np.ndarray | None:
    """A training series (raw and smoothed) with each held-out loader's rounds on one axis;
    returns every value drawn (for the limits), or None when there was nothing."""
    ax.ylabel = title
    s = tl.get(key)
    evals = _evals(tl, eval_key)
    if not (s and s["steps"]) and not evals:
        _empty(ax, empty)
        return None
    drawn = []
    if s and s["steps"]:
        y = _floats(s["values"])
        steps = np.asarray(s["steps"], dtype=float)
        ax.plot(*decimate(steps, y), color=raw[0], lw=0.7, label=raw[1])
        # a spike is marked, not smeared over the next hundred steps of the average
        ax.plot(*decimate(steps, smooth(np.minimum(y, cap))), color=smoothed, lw=1.6,
                label="smoothed")
        drawn.append((steps, y))
    for name, eval_steps, y in evals:
        ax.plot(eval_steps, y, color="#2e7d32", lw=1.0, marker="o", ms=3.5,
                label=f"held-out {_short(name)}")
        drawn.append((np.asarray(eval_steps, dtype=float), y))
    ax.xlabel = "step"
    return np.concatenate([d[1] for d in drawn]) if drawn else None


def _plot_loss(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    s = tl.get("loss")
    raw = _floats(s["values"]) if s and s["steps"] else np.array([])
    cap = (robust_limits(raw, scale_for(raw)) or (0.0, math.inf))[1]
    values = _train_and_heldout(ax, tl, "loss", "loss", "loss", "no loss seen yet",
                                ("#90a4ae", "train"), "#1565c0", cap)
    if values is None:
        return
    scale = scale_for(values)
    apply_scale(ax, scale, values)
    limits = robust_limits(values, scale)
    if limits is not None and s and s["steps"]:
        mark_outside(ax, np.asarray(s["steps"], dtype=float), _floats(s["values"]), limits)
    elif limits is None:
        _empty(ax, "the loss was never finite")
    if scale != "linear":
        ax.ylabel = f"loss ({scale} scale)"
    _mark(ax, marks)
    _legend(ax)


def _plot_accuracy(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    if _train_and_heldout(ax, tl, "accuracy", "train_acc", "acc", "", ("#b0bec5", "train"),
                          "#6a1b9a") is None:
        return
    ax.set_ylim(-0.02, 1.02)
    _mark(ax, marks)
    _legend(ax)


def has_accuracy(tl: dict[str, Any]) -> bool:
    s = tl.get("train_acc")
    return bool(s and s["steps"]) or bool(_evals(tl, "acc"))


def _lr_series(tl: dict[str, Any]) -> list[tuple[str, int, list[int], np.ndarray]]:
    out = []
    for k, s in tl.items():
        if not (k.startswith("lr/") and s["steps"]):
            continue
        width = max(len(v) if isinstance(v, (list, tuple)) else 1 for v in s["values"])
        for g in range(width):
            y = _floats(v[g] if isinstance(v, (list, tuple)) and g < len(v) else
                        (v if g == 0 and not isinstance(v, (list, tuple)) else math.nan)
                        for v in s["values"])
            out.append((k[3:], g, list(s["steps"]), y))
    return out


def constant_facts(tl: dict[str, Any]) -> str:
    """Constant series in words (``lr 0.001 (fixed)``), for the header instead of a panel;
    empty when the learning rate changes (it then has its panel)."""
    series = _lr_series(tl)
    values: set[float] = set()
    for _, _, _, y in series:
        finite = y[np.isfinite(y)]
        values.update(float(v) for v in np.unique(finite))
    if not series or len(values) != 1:
        return ""
    return f"lr {values.pop():.3g} (fixed)"


def _plot_lr(ax: Any, tl: dict[str, Any]) -> None:
    ax.ylabel = "learning rate"
    low, high = math.inf, 0.0
    for name, g, steps, y in _lr_series(tl):
        pos = y[np.isfinite(y) & (y > 0)]
        if pos.size:
            low, high = min(low, float(pos.min())), max(high, float(pos.max()))
        ax.plot(steps, y, lw=1.4, steps=True, label=f"opt {name} group {g}")
    if high > 0 and high / low > LR_LOG_RANGE:
        apply_scale(ax, "log", np.array([low, high]))
    ax.xlabel = "step"
    _legend(ax, ncol=2)


def finding_marks(findings: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        get = f.get if isinstance(f, dict) else (lambda k, f=f: getattr(f, k, None))
        step = get("step")
        if isinstance(step, int) and get("severity") in ("problem", "warning"):
            out.append({"step": step, "point": get("point"), "severity": get("severity")})
    return out


def _last_step(tl: dict[str, Any]) -> float:
    last = 0.0
    for s in tl.values():
        if isinstance(s, dict) and s.get("steps"):
            try:
                last = max(last, float(s["steps"][-1]))
            except (TypeError, ValueError):
                pass
    return last


def panels(tl: dict[str, Any]) -> list[str]:
    """The panels this run has something for, in reading order."""
    names = ["loss"] + (["accuracy"] if has_accuracy(tl) else [])
    names += ["grad_norm", "update_ratio", "activations"]
    if _lr_series(tl) and not constant_facts(tl):
        names.append("lr")
    return names


#: the live view's panels: one row, a fraction of the whole figure's drawing time, so it
#: can redraw every few seconds within its 2% share
LIVE_PANELS = ("loss", "grad_norm")


def render_png(timelines: dict[str, Any], findings: Iterable[Any] = (),
               only: Iterable[str] | None = None, small: bool = True) -> bytes:
    """The panels as one palette PNG (``only``: these panels, when the run has them;
    ``small``: compressed well, for what is stored; a live frame, not kept, is compressed
    quickly); user strings are drawn as plain text, on one line."""
    marks = finding_marks(findings)
    names = panels(timelines)
    if only is not None:
        names = [n for n in names if n in set(only)] or names[:1]
    rows = math.ceil(len(names) / 2)
    width, height = int(WIDTH * DPI), int(ROW_HEIGHT * rows * DPI)
    last = _last_step(timelines)
    from .panels import plot_activations, plot_grad_heatmap, plot_update_ratio
    draw = {"loss": lambda ax: _plot_loss(ax, timelines, marks),
            "accuracy": lambda ax: _plot_accuracy(ax, timelines, marks),
            "grad_norm": lambda ax: plot_grad_heatmap(ax, timelines, marks),
            "update_ratio": lambda ax: plot_update_ratio(ax, timelines, marks),
            "activations": lambda ax: plot_activations(ax, timelines),
            "lr": lambda ax: _plot_lr(ax, timelines)}
    with np.errstate(all="ignore"):
        axes = []
        for rect, name in zip(_grid(width, height, rows), names):
            ax = Axes(rect)
            draw[name](ax)
            if name != "activations" and last > 0 and ax.has_data():
                ax.set_xlim(-0.5, last + 0.5)        # the whole run on every panel
            axes.append(ax)
        # a legend of two rows or more above the first row: room for it at the top
        extra = max([ax.legend_rows() - 1 for ax in axes[:2]] + [0]) * LEGEND_ROW
        canvas = Canvas(width, height + int(math.ceil(extra)))
        for ax in axes:
            ax.shift(extra)
            ax.draw(canvas)
    return canvas.png(small)


def _grid(width: int, height: int, rows: int) -> list[tuple[float, float, float, float]]:
    """The panels' rectangles (left, top, right, bottom pixels), two a row, as
    matplotlib's grid places them with these margins."""
    bottom = 0.42 / rows ** 0.5 / 2.2
    top = 1 - 0.3 / (ROW_HEIGHT * rows)
    cell_w = (RIGHT - LEFT) * width / (2 + WSPACE)
    cell_h = (top - bottom) * height / (rows + HSPACE * (rows - 1))
    out = []
    for i in range(2 * rows):
        x0 = LEFT * width + (i % 2) * cell_w * (1 + WSPACE)
        y0 = (1 - top) * height + (i // 2) * cell_h * (1 + HSPACE)
        out.append((x0, y0, x0 + cell_w, y0 + cell_h))
    return out


_WARM: list[bool] = []


def warm_up() -> None:
    """Draw one tiny image once per process, so that the first live frame does not pay
    for loading the fonts and the renderer (it would set a long first wait)."""
    if _WARM:
        return
    _WARM.append(True)
    ax, canvas = Axes((30, 20, 110, 60)), Canvas(120, 90)
    ax.plot([0, 1], [0, 1], label="x")
    ax.xlabel = "step"
    ax.legend()
    ax.draw(canvas)
    canvas.png()
