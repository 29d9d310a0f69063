"""A raster canvas for the plots: antialiased lines, fills and markers through matplotlib's
Agg renderer (the lines a matplotlib figure draws), text through Pillow in the font
matplotlib uses (DejaVu Sans), both in one RGBA buffer, saved as a PNG.

No artists: a matplotlib figure makes and lays out a dozen objects per tick label, which
was most of a report's drawing time (0.2 s for five panels, against the few ms of its
lines). Coordinates are pixels from the top left; sizes of lines and text in points.
"""

from __future__ import annotations

import functools
import io
import math
import os
from typing import Any

import numpy as np

DPI = 96                 # 9 pt text is 12 px: the notebook's small font
PT = DPI / 72            # pixels a point
PNG_LEVEL = 6            # zlib level of the palette PNG (small already: the level is cheap)
PALETTE = 256            # colours of the quantised PNG: lines and the heatmap stay smooth


def rgb(color: str) -> tuple[float, float, float]:
    """``#rrggbb`` (or ``#rgb``) as floats in 0..1."""
    h = color.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return int(h[0:2], 16) / 255, int(h[2:4], 16) / 255, int(h[4:6], 16) / 255


@functools.lru_cache(maxsize=16)
def font(size: float) -> Any:
    """DejaVu Sans at ``size`` points (matplotlib's own copy of it: always there)."""
    import matplotlib
    from PIL import ImageFont
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    return ImageFont.truetype(path, size * PT)


_CONTROL = {i: " " if chr(i) in "\t\n\r\x0b\x0c" else "\ufffd"
            for i in [*range(32), *range(0x7F, 0xA0)]}


def plain(s: str) -> str:
    """``s`` as one line the font can lay out: control characters as spaces (line breaks,
    tabs) or U+FFFD, lone surrogates as "?" (a layer named "a\nb" is still drawn)."""
    return str(s).translate(_CONTROL).encode("utf-8", "replace").decode("utf-8")


def text_size(s: str, size: float) -> tuple[float, float]:
    """Width and height (ascent and descent) of ``s`` in pixels."""
    f = font(size)
    ascent, descent = f.getmetrics()
    return f.getlength(plain(s)), ascent + descent


_MARKERS: dict[str, Any] = {}


def _marker(shape: str) -> Any:
    """A unit marker path: a triangle up or down, or a circle."""
    from matplotlib.path import Path
    if shape not in _MARKERS:
        if shape == "o":
            _MARKERS[shape] = Path.unit_circle()
        else:
            s = 1.0 if shape == "^" else -1.0
            _MARKERS[shape] = Path([(0, s), (-0.87, -0.5 * s), (0.87, -0.5 * s), (0, s)],
                                   [1, 2, 2, 79])
    return _MARKERS[shape]


class Canvas:
    """One image: draw calls in pixels from the top left, then ``png``."""

    def __init__(self, width: int, height: int) -> None:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.transforms import IdentityTransform
        self.width, self.height = width, height
        self._agg = RendererAgg(width, height, DPI)
        self._identity = IdentityTransform()
        self.pixels = np.asarray(self._agg.buffer_rgba())
        self.pixels[:] = 255
        self._texts: list[tuple[Any, ...]] = []

    # -- geometry (Agg: y grows upwards there) ---------------------------------------
    def _gc(self, color: str, lw: float = 1.0, alpha: float = 1.0,
            dashes: tuple[float, ...] | None = None,
            clip: tuple[float, float, float, float] | None = None) -> Any:
        from matplotlib.transforms import Bbox
        gc = self._agg.new_gc()
        gc.set_foreground(rgb(color))
        gc.set_linewidth(lw)
        gc.set_alpha(alpha)
        gc.set_antialiased(True)
        gc.set_capstyle("butt")
        gc.set_joinstyle("round")
        if dashes:
            gc.set_dashes(0, [d * lw for d in dashes])
        if clip is not None:
            x0, y0, x1, y1 = clip
            gc.set_clip_rectangle(Bbox.from_extents(x0, self.height - y1, x1,
                                                    self.height - y0))
        return gc

    def _path(self, xs: Any, ys: Any, closed: bool = False) -> Any:
        from matplotlib.path import Path
        xy = np.column_stack([np.asarray(xs, float), self.height - np.asarray(ys, float)])
        return Path(xy, closed=closed) if len(xy) else None

    def line(self, xs: Any, ys: Any, color: str, lw: float = 1.0,
             dashes: tuple[float, ...] | None = None, alpha: float = 1.0,
             clip: tuple[float, float, float, float] | None = None) -> None:
        """A polyline; a NaN vertex breaks it."""
        path = self._path(xs, ys)
        if path is not None and lw > 0:
            self._agg.draw_path(self._gc(color, lw, alpha, dashes, clip), path,
                                self._identity)

    def polygon(self, xs: Any, ys: Any, color: str, alpha: float = 1.0,
                clip: tuple[float, float, float, float] | None = None) -> None:
        path = self._path(list(xs) + [xs[0]], list(ys) + [ys[0]], closed=True)
        if path is not None:
            gc = self._gc(color, 0.0, alpha, clip=clip)
            self._agg.draw_path(gc, path, self._identity, rgb(color))

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: str,
             alpha: float = 1.0, clip: tuple[float, float, float, float] | None = None
             ) -> None:
        self.polygon([x0, x1, x1, x0], [y0, y0, y1, y1], color, alpha, clip)

    def markers(self, xs: Any, ys: Any, shape: str, size: float, color: str,
                clip: tuple[float, float, float, float] | None = None) -> None:
        """Filled markers ``size`` points across at each (x, y)."""
        from matplotlib.transforms import Affine2D
        path = self._path(xs, ys)
        if path is None:
            return
        gc = self._gc(color, 0.0, clip=clip)
        scale = Affine2D().scale(size * PT / 2)
        self._agg.draw_markers(gc, _marker(shape), scale, path, self._identity, rgb(color))

    def block(self, x0: int, y0: int, colors: np.ndarray) -> None:
        """Paste an RGB block (rows, columns, 3 uint8) with its top left at (x0, y0)."""
        h, w = colors.shape[:2]
        x1, y1 = min(self.width, x0 + w), min(self.height, y0 + h)
        if x1 > x0 and y1 > y0:
            self.pixels[y0:y1, x0:x1, :3] = colors[:y1 - y0, :x1 - x0]
            self.pixels[y0:y1, x0:x1, 3] = 255

    # -- text (Pillow, drawn over the geometry) -----------------------------------------
    def text(self, x: float, y: float, s: str, size: float, color: str = "#000000",
             anchor: str = "ls", vertical: bool = False) -> None:
        """Text at (x, y), placed by Pillow's ``anchor`` (first letter l/m/r, second
        a/t/m/s/b/d); ``vertical``: turned a quarter left, and ``anchor`` places the turned
        text's box (l/m/r, then t/m/b: ``rm``, its right edge at x, centred on y)."""
        if s:
            self._texts.append((x, y, plain(s), size, color, anchor, vertical))

    def _draw_texts(self, image: Any) -> None:
        from PIL import Image, ImageDraw
        draw = ImageDraw.Draw(image)
        for x, y, s, size, color, anchor, vertical in self._texts:
            f = font(size)
            if not vertical:
                draw.text((x, y), s, font=f, fill=color, anchor=anchor)
                continue
            w, h = text_size(s, size)
            mask = Image.new("L", (int(math.ceil(w)) + 2, int(math.ceil(h)) + 2), 0)
            ImageDraw.Draw(mask).text((1, 1), s, font=f, fill=255, anchor="la")
            mask = mask.transpose(Image.Transpose.ROTATE_90)
            mw, mh = mask.size
            left = x - {"l": 0.0, "m": mw / 2, "r": float(mw)}.get(anchor[0], mw / 2)
            top = y - {"t": 0.0, "m": mh / 2, "b": float(mh)}.get(anchor[1], mh / 2)
            image.paste(color, (int(round(left)), int(round(top))), mask)

    def png(self, small: bool = True) -> bytes:
        """The image as a palette PNG (about a third of an RGB one's size, and quicker to
        make: an RGB PNG's compression costs twice the quantising), compressed well
        (``small``, for what is stored) or quickly (a live frame)."""
        from PIL import Image
        image = Image.frombuffer("RGBA", (self.width, self.height), self.pixels, "raw",
                                 "RGBA", 0, 1).convert("RGB")
        self._draw_texts(image)
        # an octree: a tenth of median cut's time, the same size, colours off by ~1/255
        image = image.quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE,
                               dither=Image.Dither.NONE)
        buf = io.BytesIO()
        image.save(buf, format="PNG", optimize=False,
                   compress_level=PNG_LEVEL if small else 1)
        return buf.getvalue()
