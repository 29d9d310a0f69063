"""The dashboard's plots: one matplotlib Agg figure rendered to PNG bytes.

Reads timelines in the report's form (``{name: {"steps", "values", "columns"}}``), so the
same code draws the live view (from Observations) and the final static report. No pyplot
(no global state, no GUI backend): a ``Figure`` with an Agg canvas is private to the caller.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SMOOTHING = 0.9          # EMA weight of the past: smooths batch noise over ~10 steps
MAX_ROWS = 24            # heatmap rows shown; more parameters are thinned evenly
MAX_LINES = 8            # update-ratio and activation series drawn; the rest are thinned
MAX_LABEL = 24           # characters of a parameter or layer name on an axis
UPDATE_RATIO_GUIDE = 1e-3   # the classic rule of thumb: updates ~1e-3 of the weights
FIGSIZE = (12.0, 6.2)
DPI = 72                 # ~860x450 px: readable in a cell, small enough to embed twice
LR_LOG_RANGE = 10.0      # a schedule spanning more than 10x is drawn on a log scale
PNG_LEVEL = 3            # zlib level: level 6 (the default) costs ~2x the time for ~10% less
MARK_COLORS = {"problem": "#c62828", "warning": "#ef6c00", "info": "#1565c0"}


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


def _short(name: str) -> str:
    """A name as plain text on a plot: shortened, "$" escaped (no mathtext), visible in
    legends (matplotlib hides labels that start with "_")."""
    name = str(name)
    name = name if len(name) <= MAX_LABEL else "…" + name[-(MAX_LABEL - 1):]
    name = name.replace("$", "\\$")
    return " " + name if name.startswith("_") else name


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


def _thin(items: list[Any], limit: int) -> list[int]:
    if len(items) <= limit:
        return list(range(len(items)))
    return sorted({round(i * (len(items) - 1) / (limit - 1)) for i in range(limit)})


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            color="#777", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _evals(tl: dict[str, Any], key: str) -> list[tuple[str, list[int], np.ndarray]]:
    out = []
    for name, s in tl.items():
        if name.startswith("eval/") and s["values"] and isinstance(s["values"][0], dict):
            out.append((name[5:], list(s["steps"]), _floats(v.get(key) for v in s["values"])))
    return out


def _train_and_heldout(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]], title: str,
                       key: str, eval_key: str, empty: str, raw: tuple[str, str],
                       smoothed: str) -> bool:
    """A training series (raw and smoothed) with each held-out loader's rounds on one axis."""
    ax.set_title(title, fontsize=10, loc="left")
    s = tl.get(key)
    evals = _evals(tl, eval_key)
    if not (s and s["steps"]) and not evals:
        _empty(ax, empty)
        return False
    if s and s["steps"]:
        y = _floats(s["values"])
        ax.plot(s["steps"], y, color=raw[0], lw=0.8, label=raw[1])
        ax.plot(s["steps"], smooth(y), color=smoothed, lw=1.6, label="train (smoothed)")
    for name, steps, y in evals:
        ax.plot(steps, y, "o-", ms=4, lw=1, color="#2e7d32", label=f"held-out {_short(name)}")
    return True


def _plot_loss(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    if _train_and_heldout(ax, tl, marks, "loss", "loss", "loss", "no loss seen yet",
                          ("#90a4ae", "train (raw)"), "#1565c0"):
        _mark(ax, marks)
        ax.legend(fontsize=7, loc="upper right")


def _plot_accuracy(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    if not _train_and_heldout(ax, tl, marks, "accuracy", "train_acc", "acc",
                              "no accuracy: not a classification\n(or no labels seen yet)",
                              ("#b0bec5", "train batch"), "#6a1b9a"):
        return
    ax.set_ylim(-0.02, 1.02)
    _mark(ax, marks)
    ax.legend(fontsize=7, loc="lower right")


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


def _plot_grad_heatmap(ax: Any, fig: Figure, tl: dict[str, Any],
                       marks: list[dict[str, Any]]) -> None:
    ax.set_title("gradient norm per parameter (log10)", fontsize=10, loc="left")
    s = tl.get("grad_norm")
    if not (s and s["steps"] and s.get("columns")):
        _empty(ax, "no gradients seen yet")
        return
    cols, steps, data = _matrix(s)
    keep = _thin(cols, MAX_ROWS)
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = np.log10(np.where(data > 0, data, np.nan))[:, keep].T
    finite = logv[np.isfinite(logv)]
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (-1.0, 1.0)
    extent = (steps[0] - 0.5, steps[-1] + 0.5, len(keep) - 0.5, -0.5)
    img = ax.imshow(np.ma.masked_invalid(logv), aspect="auto", interpolation="nearest",
                    cmap="viridis", extent=extent, vmin=vmin, vmax=max(vmax, vmin + 1e-6))
    ax.set_yticks(range(len(keep)))
    ax.set_yticklabels([_short(cols[i]) for i in keep], fontsize=6)
    ax.set_xlabel("step", fontsize=8)
    fig.colorbar(img, ax=ax, fraction=0.04, pad=0.02, format="%.1f")
    _mark(ax, marks, text=False)


def _plot_activations(ax: Any, tl: dict[str, Any]) -> None:
    ax.set_title("activations, last sample (mean, std, zero share)", fontsize=10, loc="left")
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
    ax.barh(y + h, arr[:, 2], h, color="#c62828", label="zero share")
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=6)
    ax.invert_yaxis()
    ax.axvline(0, color="#999", lw=0.6)
    ax.legend(fontsize=7, loc="lower right")


def _plot_update_ratio(ax: Any, tl: dict[str, Any], marks: list[dict[str, Any]]) -> None:
    ax.set_title("update / weight ratio per parameter", fontsize=10, loc="left")
    s = tl.get("update_ratio")
    if not (s and s["steps"] and s.get("columns")):
        _empty(ax, "no optimizer steps sampled yet")
        return
    cols, steps, data = _matrix(s)
    drawn = False
    for i in _thin(cols, MAX_LINES):
        y = data[:, i]
        if np.isfinite(y).any() and (y[np.isfinite(y)] > 0).any():
            ax.plot(steps, np.where(y > 0, y, np.nan), lw=1, label=_short(cols[i]))
            drawn = True
    if not drawn:
        _empty(ax, "updates are all zero")
        return
    _log_y(ax)
    ax.axhline(UPDATE_RATIO_GUIDE, color="#999", ls=":", lw=1)
    _mark(ax, marks, text=False)
    ax.legend(fontsize=6, loc="upper right", ncol=2)


def _plot_lr(ax: Any, tl: dict[str, Any]) -> None:
    ax.set_title("learning rate per param group", fontsize=10, loc="left")
    series = [(k, s) for k, s in tl.items() if k.startswith("lr/") and s["steps"]]
    if not series:
        _empty(ax, "no optimizer seen yet")
        return
    low, high = math.inf, 0.0
    for k, s in series:
        width = max(len(v) if isinstance(v, (list, tuple)) else 1 for v in s["values"])
        for g in range(width):
            y = _floats(v[g] if isinstance(v, (list, tuple)) and g < len(v) else math.nan
                        for v in s["values"])
            pos = y[np.isfinite(y) & (y > 0)]
            if pos.size:
                low, high = min(low, float(pos.min())), max(high, float(pos.max()))
            ax.plot(s["steps"], y, lw=1.4, drawstyle="steps-post",
                    label=f"optimizer {k[3:]} group {g}")
    if high > 0 and high / low > LR_LOG_RANGE:
        _log_y(ax)
    ax.set_xlabel("step", fontsize=8)
    ax.legend(fontsize=7, loc="upper right")


def _log_y(ax: Any) -> None:
    """Log scale without minor ticks: they are most of a log axis's drawing time."""
    from matplotlib.ticker import NullLocator
    ax.set_yscale("log")
    ax.yaxis.set_minor_locator(NullLocator())


def _mark(ax: Any, marks: list[dict[str, Any]], text: bool = True) -> None:
    """Findings at the step they were seen: a dashed line, labelled with the point."""
    for m in marks:
        color = MARK_COLORS.get(m.get("severity", ""), "#555")
        ax.axvline(m["step"], color=color, ls="--", lw=1.1)
        if text:
            ax.text(m["step"], 0.97, f" {m['point']}", color=color, fontsize=8,
                    va="top", transform=ax.get_xaxis_transform())


def finding_marks(findings: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for f in findings:
        step = f.get("step") if isinstance(f, dict) else getattr(f, "step", None)
        if isinstance(step, int):
            get = f.get if isinstance(f, dict) else (lambda k, f=f: getattr(f, k, None))
            out.append({"step": step, "point": get("point"), "severity": get("severity")})
    return out


def render_png(timelines: dict[str, Any], findings: Iterable[Any] = ()) -> bytes:
    """All panels as one PNG; user strings are drawn as plain text (see ``_short``)."""
    import matplotlib
    marks = finding_marks(findings)
    # a name in a script the font lacks (CJK layer names, emoji) makes matplotlib warn once
    # per missing glyph: lines of noise under the user's cell at every redraw; the PNG
    # shows boxes for them and the HTML report has the names as text
    with warnings.catch_warnings(), matplotlib.rc_context({
            "axes.titlesize": 10, "xtick.labelsize": 7, "ytick.labelsize": 7}):
        warnings.simplefilter("ignore")
        # a fixed layout: constrained layout measures every label and doubles the cost
        fig = Figure(figsize=FIGSIZE, dpi=DPI)
        fig.subplots_adjust(left=0.11, right=0.97, bottom=0.07, top=0.95, wspace=0.6,
                            hspace=0.3)
        FigureCanvasAgg(fig)
        axes = fig.subplots(2, 3)
        _plot_loss(axes[0, 0], timelines, marks)
        _plot_accuracy(axes[0, 1], timelines, marks)
        _plot_grad_heatmap(axes[0, 2], fig, timelines, marks)
        _plot_activations(axes[1, 0], timelines)
        _plot_update_ratio(axes[1, 1], timelines, marks)
        _plot_lr(axes[1, 2], timelines)
        buf = io.BytesIO()
        for ax in axes.flat:
            ax.locator_params(axis="x", nbins=5)
        fig.savefig(buf, format="png", dpi=DPI, pil_kwargs={"compress_level": PNG_LEVEL})
    return buf.getvalue()
