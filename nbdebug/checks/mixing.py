"""How the training batches' labels and order look: shared by points 6 and 7.

Plain host arithmetic on the per-batch label histograms and input fingerprints that
capture recorded; the reference for "well mixed" is what random batches of the same size
drawn from the same label distribution would give (computed exactly: no RNG is drawn).
"""

from __future__ import annotations

import numpy as np

from ..observations import Observations
from .shared import once

#: label histograms needed before judging how the batches are mixed
MIN_LABEL_BATCHES = 5
#: relative tolerance for two input fingerprints to be the same batch
SAME_BATCH_RTOL = 1e-9
#: more label columns than this are tokens of a vocabulary, not classes to mix per batch
MAX_CLASSES = 1000


def _entropies(rows: np.ndarray) -> np.ndarray:
    """Label entropy (nats) of each row of counts."""
    n = rows.sum(1, keepdims=True)
    p = rows / np.maximum(n, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(1)


def batch_mixing(obs: Observations) -> dict[str, float] | None:
    """``_batch_mixing``, once for all the checks that read it."""
    return once(("batch_mixing", id(obs)), lambda: _batch_mixing(obs))


def expected_entropy(size: int, p: np.ndarray) -> float:
    """The mean label entropy (nats) of random batches of ``size`` drawn with the label
    shares ``p``, exactly: entropy is a sum over the labels, and each label's count in
    such a batch is binomial (``size``, its share)."""
    j = np.arange(size + 1, dtype=float)
    log_fact = np.log(np.maximum(j, 1.0)).cumsum()           # log j!
    log_choose = log_fact[-1] - log_fact - log_fact[::-1]      # log C(size, j)
    q = j / size
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(q > 0, -q * np.log(q), 0.0)
        ps = p[p > 0][:, None]
        rest = np.where(j < size, (size - j) * np.log1p(-np.minimum(ps, 1 - 1e-300)), 0.0)
        log_pmf = log_choose + j * np.log(ps) + rest
    return float((np.exp(log_pmf) * term).sum())


def _batch_mixing(obs: Observations) -> dict[str, float] | None:
    """How mixed the training batches' labels are, from the label histograms.

    ``entropy_ratio``: mean batch label entropy over that of random batches of the same
    size from the same label distribution (1 = as mixed as random, 0 = one class each).
    ``single_class_share``: batches holding one class; ``expected_single_share``: the same
    for random batches. ``label_changes``: share of consecutive batches whose most common
    label differs (low when the data is sorted by label).
    """
    series = obs.timelines.get("labels")
    if series is None:
        return None
    width = min((len(r) for r in series.values), default=0)
    if width < 2 or width > MAX_CLASSES:
        return None
    rows = np.array([list(r)[:width] for r in series.values], dtype=float)
    rows = rows[rows.sum(1) > 0]
    if len(rows) < MIN_LABEL_BATCHES:
        return None
    total = rows.sum(0)
    if (total > 0).sum() < 2:
        return None
    p = total / total.sum()
    size = max(1, round(float(rows.sum()) / len(rows)))
    expected_h = expected_entropy(size, p)
    if expected_h <= 0:
        return None
    single = float(((rows > 0).sum(1) == 1).mean())
    top = rows.argmax(1)
    changes = float((top[1:] != top[:-1]).mean())
    return {"entropy_ratio": float(_entropies(rows).mean()) / expected_h,
            "single_class_share": single,
            "expected_single_share": float(np.sum(p ** size)),
            "label_changes": changes, "batches": float(len(rows)), "batch_size": float(size),
            "classes_seen": float((total > 0).sum())}


def same_batch(a: list[float], b: list[float]) -> bool:
    return all(abs(x - y) <= SAME_BATCH_RTOL * max(abs(x), abs(y), 1.0) for x, y in zip(a, b))


def repeat_period(obs: Observations) -> int | None:
    """Batches per epoch when the training inputs came in the same order twice, else None.

    The smallest period P >= 2 such that the first P batches come again, in the same order,
    right after them. A period of 1 (one full batch every step) says nothing about order.
    """
    fps = obs.input_fingerprints
    if all(same_batch(fp, fps[0]) for fp in fps):
        return None                      # one batch over and over (or nothing recorded)
    for period in range(2, len(fps) // 2 + 1):
        if not same_batch(fps[period], fps[0]):
            continue
        if all(same_batch(fps[i], fps[i + period]) for i in range(period)):
            return period
    return None
