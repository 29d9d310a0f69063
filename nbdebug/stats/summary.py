"""Tensor summaries computed where the tensor lives; results stay on that device.

Nothing here reads a value back to the host: no ``.item()``, ``.cpu()``, ``.tolist()``,
``float()`` or ``bool()`` of a tensor. The host sees the numbers at the next flush.
"""

from __future__ import annotations

import math
from typing import Any

import torch

#: the columns of a summary timeline (``summary_row``), in order
SUMMARY = ("mean", "std", "min", "max", "absmax", "zero_frac", "nonfinite")


class Unsupported(Exception):
    """The tensor cannot be summarised (sparse, meta, complex, quantized, empty)."""


def check_supported(t: torch.Tensor) -> None:
    if t.layout != torch.strided:
        raise Unsupported(f"{t.layout} layout")
    if t.is_meta:
        raise Unsupported("meta tensor")
    if t.is_complex():
        raise Unsupported("complex dtype")
    if t.is_quantized:
        raise Unsupported("quantized dtype")
    if t.numel() == 0:
        raise Unsupported("empty tensor")


def as_float(t: torch.Tensor) -> torch.Tensor:
    x = t.detach()
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def summarize(t: torch.Tensor) -> list[torch.Tensor]:
    """Seven 0-d tensors on ``t``'s device, to be read by ``summary_row``: a pivot ``c``
    (the first value), the sum and the sum of squares of ``x - c``, the min, the max, the
    count of non-zero values and the count of non-finite ones (``torch.stack`` joins them
    in the float dtype of the sums).

    Shifting by a value of the tensor keeps the variance exact in floating point (no
    cancellation when the mean is far from 0), and the sums are plain reductions: several
    times cheaper than ``std_mean`` on a CPU. Non-finite values are counted as the non-zero
    entries of ``d - d``. The sum of ``d`` is non-finite exactly when ``t`` holds a NaN or
    an Inf (or overflows), so it doubles as the NaN guard of ``t`` (``guard``).
    """
    check_supported(t)
    x = as_float(t)
    flat = x.reshape(-1)
    c = flat[0]
    d = flat - c
    lo, hi = torch.aminmax(flat)
    return [c, d.sum(), torch.dot(d, d), lo, hi, torch.count_nonzero(flat),
            torch.count_nonzero(d - d)]


def summary_row(arr: Any, n: int) -> list[float]:
    """The host values of ``SUMMARY`` from ``summarize``'s result for a tensor of ``n``."""
    c, s1, s2, lo, hi, nonzero, nonfinite = (float(v) for v in arr[:7])
    m1 = s1 / n
    mean = c + m1
    var = s2 / n - m1 * m1
    std = math.sqrt(var) if var > 0 else (0.0 if var == var else math.nan)
    return [mean, std, lo, hi, max(abs(lo), abs(hi)), (n - nonzero) / n, nonfinite]


def guard(t: torch.Tensor) -> torch.Tensor:
    """One cheap value that is non-finite when ``t`` holds a NaN or an Inf.

    The float32 sum of a tensor: NaN and Inf propagate through it. Summing finite
    float32 values never reaches Inf below ~1e38, so a false trip needs values that
    are already overflowing.
    """
    x = t.detach()
    if x.dtype == torch.float32 or x.dtype == torch.float64:
        return x.sum()
    return x.sum(dtype=torch.float32)


def feature_moments(x: torch.Tensor) -> torch.Tensor:
    """Per-feature (dim 1; per channel for images) count, sum, sum of squares, min, max.

    Returns a (5, F) float64 tensor on ``x``'s device, to be added across batches.
    """
    check_supported(x)
    v = x.detach()
    if v.dim() == 1:
        v = v.reshape(-1, 1)
    f = v.shape[1]
    v = v.transpose(0, 1).reshape(f, -1).double()
    lo, hi = torch.aminmax(v, dim=1)
    count = torch.full((f,), float(v.shape[1]), dtype=torch.float64, device=v.device)
    return torch.stack([count, v.sum(1), (v * v).sum(1), lo, hi])


def label_histogram(target: torch.Tensor, classes: int) -> torch.Tensor:
    """Counts of each class index in ``target`` (ignored / out-of-range indices dropped)."""
    t = target.detach().reshape(-1).long().clamp(-1, classes) + 1   # 0 and classes+1: dropped
    hist = torch.zeros(classes + 2, dtype=torch.float32, device=t.device)
    hist.scatter_add_(0, t, torch.ones(t.shape[0], dtype=torch.float32, device=t.device))
    return hist[1:classes + 1]
