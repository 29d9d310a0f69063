"""One panel of the plots on a ``canvas.Canvas``: what the panel code adds to it is kept
until ``draw``, which settles the limits (the data's, with margins, unless set), then
draws the data clipped to the panel, the frame, the ticks and their labels, the axis
labels, the title and a legend above the data.

The subset of a matplotlib ``Axes`` that the plots use, under the same names where they
mean the same, drawn in matplotlib's default style (its spines, ticks and fonts).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .canvas import PT, Canvas, text_size
from .ticks import log_ticks, nice_ticks, number, symlog_ticks

MARGIN = 0.05            # of the data's range, around it, on an axis it sets
TICK = 3.5 * PT          # tick length, and the gap from a tick to its label
LABEL_PAD = 4 * PT       # from the tick labels to the axis label
TITLE_PAD = 6 * PT
TICK_SIZE = 8.5          # points: tick labels, axis labels, legend, title
LABEL_SIZE = 9.0
LEGEND_SIZE = 8.0
TITLE_SIZE = 10.0
SPINE = 0.8              # frame line width, points
LEGEND_ROW = 1.5 * LEGEND_SIZE * PT     # pixels a row of the legend takes
CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


class Axes:
    """A panel at ``rect`` (left, top, right, bottom pixels) of the canvas it is drawn on."""

    def __init__(self, rect: tuple[float, float, float, float]) -> None:
        self.canvas: Canvas = None      # type: ignore[assignment]    # (set by ``draw``)
        self.rect = list(rect)
        self._items: list[Callable[[], None]] = []
        self._xs: list[np.ndarray] = []     # the data's extent, for the limits
        self._ys: list[np.ndarray] = []
        self._sticky_x: list[float] = []    # limits no margin passes (an image's edges)
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float, float] | None = None
        self.yscale, self.linthresh = "linear", 1.0
        self._tl: tuple[float, float] = (0.0, 1.0)     # the y limits on the y scale
        self.colorbar_ticks: list[str] = []
        self.xlabel = self.ylabel = self.title = ""
        self.xticks: list[tuple[float, str]] | None = None     # None: chosen at draw
        self.yticks: list[tuple[float, str]] | None = None
        self.ytick_size = TICK_SIZE
        self.x_bins = 4
        self.inverted = False
        self.handles: list[tuple[str, tuple[Any, ...]]] = []
        self._legend: tuple[int, bool] | None = None
        self._after: list[Callable[[], None]] = []      # drawn after the frame
        self._colors = iter(CYCLE)

    # -- what a panel adds ------------------------------------------------------------
    def _data(self, xs: Any, ys: Any) -> None:
        self._xs.append(np.asarray(xs, dtype=float).ravel())
        self._ys.append(np.asarray(ys, dtype=float).ravel())

    def plot(self, x: Any, y: Any, color: str | None = None, lw: float = 1.5,
             label: str | None = None, marker: str | None = None, ms: float = 6.0,
             line: bool = True, steps: bool = False, clip: bool = True) -> None:
        """A line (``steps``: drawn as steps after each point), markers at its points, or
        both."""
        color = color or next(self._colors, "#555555")
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        self._data(x, y)

        def draw() -> None:
            px, py = self.px(x), self.py(y)
            box = tuple(self.rect) if clip else None
            if line and len(x) > 1:
                lx, ly = px, py
                if steps:
                    lx = np.repeat(px, 2)[1:]
                    ly = np.repeat(py, 2)[:-1]
                self.canvas.line(lx, ly, color, lw, clip=box)       # type: ignore[arg-type]
            if marker:
                ok = np.isfinite(py)
                self.canvas.markers(px[ok], py[ok], marker, ms, color, clip=box)  # type: ignore[arg-type]
        self._items.append(draw)
        if label:
            self.handles.append((label, ("line" if line else "marker", color, lw, marker,
                                         ms, None)))

    def fill_between(self, x: Any, low: Any, high: Any, color: str, alpha: float = 1.0,
                     label: str | None = None) -> None:
        x, low, high = (np.asarray(v, dtype=float) for v in (x, low, high))
        self._data(np.concatenate([x, x]), np.concatenate([low, high]))

        def draw() -> None:
            px = self.px(x)
            self.canvas.polygon(np.concatenate([px, px[::-1]]),
                                np.concatenate([self.py(low), self.py(high)[::-1]]),
                                color, alpha, clip=tuple(self.rect))  # type: ignore[arg-type]
        self._items.append(draw)
        if label:
            self.handles.append((label, ("patch", color, alpha)))

    def axhline(self, y: float, color: str, lw: float = 1.0,
                dashes: tuple[float, ...] | None = None, label: str | None = None) -> None:
        self._ys.append(np.array([y], dtype=float))
        self._items.append(lambda: self.canvas.line(
            [self.rect[0], self.rect[2]], [self.py(np.array([y]))[0]] * 2, color, lw, dashes,
            clip=tuple(self.rect)))                                  # type: ignore[arg-type]
        if label:
            self.handles.append((label, ("line", color, lw, None, 0.0, dashes)))

    def axvline(self, x: float, color: str, lw: float = 1.0,
                dashes: tuple[float, ...] | None = None) -> None:
        self._items.append(lambda: self.canvas.line(
            [self.px(np.array([x]))[0]] * 2, [self.rect[1], self.rect[3]], color, lw, dashes,
            clip=tuple(self.rect)))                                  # type: ignore[arg-type]

    def axvspan(self, x0: float, x1: float, color: str, alpha: float,
                label: str | None = None) -> None:
        def draw() -> None:
            a, b = self.px(np.array([x0, x1]))
            self.canvas.rect(a, self.rect[1], b, self.rect[3], color, alpha,
                             clip=tuple(self.rect))                  # type: ignore[arg-type]
        self._items.append(draw)
        if label:
            self.handles.append((label, ("patch", color, alpha)))

    def barh(self, y: Any, width: Any, height: float, color: str,
             label: str | None = None) -> None:
        y, width = np.asarray(y, dtype=float), np.asarray(width, dtype=float)
        self._data(np.concatenate([width, [0.0]]),
                   np.concatenate([y - height / 2, y + height / 2]))
        self._sticky_x.append(0.0)

        def draw() -> None:
            for yy, w in zip(y, width):
                if math.isfinite(w):
                    x0, x1 = self.px(np.array([0.0, w]))
                    y0, y1 = self.py(np.array([yy - height / 2, yy + height / 2]))
                    self.canvas.rect(x0, y0, x1, y1, color, clip=tuple(self.rect))  # type: ignore[arg-type]
        self._items.append(draw)
        if label:
            self.handles.append((label, ("patch", color, 1.0)))

    def image(self, colors: np.ndarray, edges: np.ndarray) -> None:
        """Rows of coloured cells (``colors``: rows, columns, 3 uint8), row 0 at the top,
        column j from ``edges[j]`` to ``edges[j + 1]`` on the x axis."""
        rows = colors.shape[0]
        self._data(edges, [-0.5, rows - 0.5])
        self._sticky_x += [float(edges[0]), float(edges[-1])]
        self.ylim, self.inverted = (-0.5, rows - 0.5), True

        def draw() -> None:
            x0, y0, x1, y1 = (int(round(v)) for v in self.rect)
            centres = self.data_x(np.arange(x0, x1) + 0.5)
            col = np.searchsorted(edges, centres, side="right") - 1
            inside = (col >= 0) & (col < colors.shape[1])
            row = ((np.arange(y0, y1) + 0.5 - self.rect[1]) * rows
                   / (self.rect[3] - self.rect[1])).astype(int).clip(0, rows - 1)
            block = colors[row][:, col.clip(0, colors.shape[1] - 1)]
            block[:, ~inside] = 255
            self.canvas.block(x0, y0, block)
        self._items.append(draw)

    def text(self, x: float, y: float, s: str, color: str = "#000000",
             size: float = TICK_SIZE, data_x: bool = False, anchor: str = "mm") -> None:
        """Text at axes fractions (0..1 from the bottom left), or, ``data_x``, at x in
        data and y as a fraction of the panel's height."""
        def draw() -> None:
            px = self.px(np.array([x]))[0] if data_x else (
                self.rect[0] + x * (self.rect[2] - self.rect[0]))
            self.canvas.text(px, self.rect[3] - y * (self.rect[3] - self.rect[1]), s, size,
                             color, anchor)
        self._after.append(draw)

    def colorbar(self, lut: np.ndarray, low: float, high: float,
                 ticks: list[tuple[float, str]]) -> None:
        """A colour bar right of the panel (which gives up the room): ``lut`` (n, 3 uint8)
        from ``low`` at the bottom to ``high`` at the top, with labelled ``ticks``."""
        width = self.rect[2] - self.rect[0]
        left = self.rect[2] - 0.04 * width          # (matplotlib's fraction, pad, aspect)
        self.rect[2] -= 0.06 * width
        self.colorbar_ticks = [label for _, label in ticks]

        def draw() -> None:
            bar = [left, self.rect[1],
                   left + min(0.04 * width, (self.rect[3] - self.rect[1]) / 20), self.rect[3]]
            x0, y0, x1, y1 = (int(round(v)) for v in bar)
            idx = np.linspace(len(lut) - 1, 0, max(1, y1 - y0)).astype(int)
            self.canvas.block(x0, y0, np.repeat(lut[idx][:, None], x1 - x0, axis=1))
            self._frame(bar)
            for v, label in ticks:
                y = y1 - (v - low) / (high - low or 1.0) * (y1 - y0)
                self.canvas.line([x1, x1 + TICK], [y, y], "#000000", SPINE)
                self.canvas.text(x1 + 2 * TICK, y, label, TICK_SIZE, anchor="lm")
        self._after.append(draw)

    def legend(self, ncol: int = 4, right: bool = False) -> None:
        if self.handles:
            self._legend = (ncol, right)

    def set_xlim(self, low: float, high: float) -> None:
        self.xlim = (low, high)

    def set_ylim(self, low: float, high: float) -> None:
        self.ylim = (low, high)

    def set_yscale(self, scale: str, linthresh: float = 1.0) -> None:
        self.yscale, self.linthresh = scale, linthresh

    def set_yticks(self, values: Any, labels: list[str], size: float = TICK_SIZE) -> None:
        self.yticks = list(zip((float(v) for v in values), labels))
        self.ytick_size = size

    def no_ticks(self) -> None:
        self.xticks, self.yticks = [], []

    def invert_yaxis(self) -> None:
        self.inverted = not self.inverted

    def has_data(self) -> bool:
        return bool(self._items)

    # -- limits and coordinates ---------------------------------------------------------
    def _t(self, v: np.ndarray) -> np.ndarray:
        """Values on the y scale (log: NaN at or below 0)."""
        with np.errstate(all="ignore"):
            if self.yscale == "log":
                return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
            if self.yscale == "symlog":
                return np.sign(v) * np.log10(1 + np.abs(v) / self.linthresh)
        return v

    def _limits(self, values: list[np.ndarray], sticky: list[float],
                t: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
        data = t(np.concatenate(values)) if values else np.array([])
        data = data[np.isfinite(data)]
        if not data.size:
            return 0.0, 1.0
        low, high = float(data.min()), float(data.max())
        if low == high:
            pad = abs(low) * 0.1 or 1.0
            return low - pad, high + pad
        pad = (high - low) * MARGIN
        stuck = [float(s) for s in t(np.array(sticky, dtype=float))] if sticky else []
        return (low if low in stuck else low - pad), (high if high in stuck else high + pad)

    def _settle(self) -> None:
        if self.xlim is None:
            self.xlim = self._limits(self._xs, self._sticky_x, lambda v: v)
        if self.ylim is None:
            self._tl = self._limits(self._ys, [], self._t)
        else:
            low, high = (float(v) for v in self._t(np.array(self.ylim, dtype=float)))
            self._tl = (low, high)
            if not all(math.isfinite(v) for v in self._tl) or self._tl[0] == self._tl[1]:
                self._tl = (0.0, 1.0)
        if self.inverted:
            self._tl = self._tl[::-1]

    def px(self, x: np.ndarray) -> np.ndarray:
        low, high = self.xlim or (0.0, 1.0)
        return self.rect[0] + (np.asarray(x, dtype=float) - low) / (high - low or 1.0) * (
            self.rect[2] - self.rect[0])

    def data_x(self, px: np.ndarray) -> np.ndarray:
        low, high = self.xlim or (0.0, 1.0)
        return low + (px - self.rect[0]) / (self.rect[2] - self.rect[0]) * (high - low)

    def py(self, y: np.ndarray) -> np.ndarray:
        low, high = self._tl
        return self.rect[3] - (self._t(np.asarray(y, dtype=float)) - low) / (
            high - low or 1.0) * (self.rect[3] - self.rect[1])

    # -- drawing ----------------------------------------------------------------------
    def legend_rows(self) -> int:
        """Rows of the legend above the panel (0: none)."""
        return -(-len(self.handles) // self._legend[0]) if self._legend else 0

    def shift(self, dy: float) -> None:
        """Move the panel down ``dy`` pixels (room above it for a taller legend)."""
        self.rect[1] += dy
        self.rect[3] += dy

    def draw(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self._settle()
        for item in self._items:
            item()
        self._frame(self.rect)
        self._ticks()
        for item in self._after:
            item()
        if self.title:
            self.canvas.text(self.rect[0], self.rect[1] - TITLE_PAD, self.title, TITLE_SIZE,
                             anchor="ld")
        if self._legend:
            self._draw_legend(*self._legend)

    def _frame(self, rect: list[float]) -> None:
        x0, y0, x1, y1 = rect
        self.canvas.line([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], "#000000", SPINE)

    def _auto_xticks(self) -> list[tuple[float, str]]:
        low, high = self.xlim or (0.0, 1.0)
        ticks, step = nice_ticks(low, high, self.x_bins)
        return [(float(v), number(v, step)) for v in ticks]

    def _auto_yticks(self) -> list[tuple[float, str]]:
        from .axes import power_label
        low, high = sorted(self._tl)
        if self.yscale == "log":
            return [(v, power_label(v)) for v in log_ticks(10 ** low, 10 ** high)]
        if self.yscale == "symlog":
            return [(v, power_label(v)) for v in symlog_ticks(low, high, self.linthresh)]
        # as many as fit, as matplotlib's: a label's height and as much again apart
        bins = (self.rect[3] - self.rect[1]) / (2 * TICK_SIZE * PT)
        ticks, step = nice_ticks(low, high, int(min(9, max(1, bins))))
        return [(float(v), number(v, step)) for v in ticks]

    def _ticks(self) -> None:
        x0, y0, x1, y1 = self.rect
        xticks = self._auto_xticks() if self.xticks is None else self.xticks
        below = y1 + TICK
        for v, label in xticks:
            x = float(self.px(np.array([v]))[0])
            if x0 - 0.5 <= x <= x1 + 0.5:
                self.canvas.line([x, x], [y1, y1 + TICK], "#000000", SPINE)
                self.canvas.text(x, y1 + 2 * TICK, label, TICK_SIZE, anchor="mt")
                below = y1 + 2 * TICK + text_size(label, TICK_SIZE)[1]
        if self.xlabel:
            self.canvas.text((x0 + x1) / 2, below + LABEL_PAD, self.xlabel, LABEL_SIZE,
                             anchor="mt")
        yticks = self._auto_yticks() if self.yticks is None else self.yticks
        widest = 0.0
        for v, label in yticks:
            y = float(self.py(np.array([v]))[0])
            if y0 - 0.5 <= y <= y1 + 0.5:
                self.canvas.line([x0 - TICK, x0], [y, y], "#000000", SPINE)
                self.canvas.text(x0 - 2 * TICK, y, label, self.ytick_size, anchor="rm")
                widest = max(widest, text_size(label, self.ytick_size)[0])
        if self.ylabel:
            self.canvas.text(x0 - 2 * TICK - widest - LABEL_PAD, (y0 + y1) / 2, self.ylabel,
                             LABEL_SIZE, anchor="rm", vertical=True)

    def _draw_legend(self, ncol: int, right: bool) -> None:
        """The entries in rows of ``ncol`` above the panel, from its left edge (or its
        right), the last row just above it."""
        size = LEGEND_SIZE * PT
        handle, gap, spacing = 1.4 * size, 0.8 * size, 0.9 * size
        entries = [(label, style, handle + gap + text_size(label, LEGEND_SIZE)[0])
                   for label, style in self.handles]
        rows = [entries[i:i + ncol] for i in range(0, len(entries), ncol)]
        widths = [max(r[c][2] for r in rows if c < len(r)) for c in range(min(ncol, len(entries)))]
        total = sum(widths) + spacing * (len(widths) - 1)
        left = self.rect[2] - total - 0.2 * size if right else self.rect[0] + 0.2 * size
        for i, row in enumerate(rows):
            y = self.rect[1] - 0.2 * size - (len(rows) - i - 0.5) * LEGEND_ROW
            x = left
            for (label, style, _), width in zip(row, widths):
                self._handle(style, x, y, handle, size)
                self.canvas.text(x + handle + gap, y, label, LEGEND_SIZE, anchor="lm")
                x += width + spacing

    def _handle(self, style: tuple[Any, ...], x: float, y: float, length: float,
                size: float) -> None:
        kind, color = style[0], style[1]
        if kind == "patch":
            self.canvas.rect(x, y - 0.35 * size, x + length, y + 0.35 * size, color,
                             style[2])
            return
        _, _, lw, marker, ms, dashes = style
        if kind == "line":
            self.canvas.line([x, x + length], [y, y], color, lw, dashes)
        if marker:
            self.canvas.markers([x + length / 2], [y], marker, ms, color)
