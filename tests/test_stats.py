"""The device summaries against float64 references computed on the host."""

from __future__ import annotations

import math

import pytest
import torch

from nbdebug.stats import SUMMARY, summarize, summary_row


def _row(x: torch.Tensor) -> dict[str, float]:
    return dict(zip(SUMMARY, summary_row(torch.stack(summarize(x)).double().numpy(), x.numel())))


@pytest.mark.parametrize("x", [
    torch.randn(32, 16, 8, 8).relu(),                    # a conv activation
    torch.randn(1000) * 0.01 + 100.0,                    # mean far from 0, tiny spread
    torch.randn(7, 5).to(torch.bfloat16),
    torch.randn(9, dtype=torch.float64),
    torch.randn(6, 4).t(),                               # not contiguous
    torch.zeros(10),
], ids=["conv-relu", "offset", "bfloat16", "float64", "transposed", "zeros"])
def test_summary_matches_float64_reference(x):
    row, ref = _row(x), x.double()
    assert row["mean"] == pytest.approx(float(ref.mean()), rel=1e-5, abs=1e-6)
    assert row["std"] == pytest.approx(float(ref.std(correction=0)), rel=1e-3, abs=1e-6)
    assert (row["min"], row["max"]) == (float(ref.min()), float(ref.max()))
    assert row["absmax"] == float(ref.abs().max())
    assert row["zero_frac"] == pytest.approx(float((ref == 0).double().mean()))
    assert row["nonfinite"] == 0


def test_non_finite_values_are_counted():
    x = torch.tensor([0.0, 1.0, math.nan, math.inf, -math.inf, -3.0])
    row = _row(x)
    assert row["nonfinite"] == 3 and math.isnan(row["mean"])
    assert row["zero_frac"] == pytest.approx(1 / 6)


def test_the_summary_sum_is_a_nan_guard():
    """Sampled steps use the summary's shifted sum as the layer's NaN guard."""
    x = torch.randn(64, 8)
    assert math.isfinite(float(summarize(x)[1]))
    for bad in (math.nan, math.inf, -math.inf):
        for at in (0, 5):                                  # the pivot itself, or another
            y = x.clone()
            y.view(-1)[at] = bad
            assert not math.isfinite(float(summarize(y)[1]))


def test_held_counts_stay_exact_beside_half_precision_values():
    """0-d values of a window are stacked at the flush; bfloat16 ones must not round the
    counts held beside them (bfloat16 holds integers exactly only up to 256)."""
    from nbdebug.stats import Pending
    got = []
    pending = Pending()
    pending.put(0, [torch.tensor(1.5, dtype=torch.bfloat16), torch.tensor(1001)],
                lambda s, a: got.append(a.tolist()))
    pending.flush()
    assert got == [[1.5, 1001.0]]


def test_values_of_several_dtypes_keep_their_order_and_their_values():
    """The flush reads the 0-d values (a GPU's: one stack a dtype): each sink must still get its
    own values, in place, integers exact (2**40 + 1 is not a float32)."""
    from nbdebug.stats import Pending
    got: dict[int, list[float]] = {}
    pending = Pending()
    rows = [[torch.tensor(0.25), torch.tensor(2**40 + 1)],
            [torch.tensor(7), torch.tensor(True), torch.tensor(-1.5)],
            [torch.tensor(3.0, dtype=torch.float16)]]
    for s, row in enumerate(rows):
        pending.put(s, row, lambda s, a: got.__setitem__(s, a.tolist()))
    pending.put(3, torch.tensor([1.0, 2.0]), lambda s, a: got.__setitem__(s, a.tolist()))
    pending.flush()
    assert got == {0: [0.25, 2.0**40 + 1], 1: [7.0, 1.0, -1.5], 2: [3.0], 3: [1.0, 2.0]}
    # (on the CPU the values are read one by one; on a GPU one stack per dtype)
    from nbdebug.stats.buffers import _stacked
    flat = [t for row in rows for t in row]
    assert _stacked(flat).tolist() == [0.25, 2.0**40 + 1, 7.0, 1.0, -1.5, 3.0]


def test_sinks_get_their_values_in_the_order_they_were_put():
    """Row sinks with a ``batch`` method take runs of rows at once; plain sinks get their
    values one by one; between them the order of ``put`` is kept (a loss timeline fed by
    both stays in step order)."""
    from nbdebug.stats import Pending
    seen: list[tuple[str, list[int]]] = []

    class Rows:
        def __call__(self, step, arr):
            self.batch([step], arr.reshape(1, -1))

        def batch(self, steps, arr):
            assert arr.shape == (len(steps), 1)
            seen.append(("rows", list(steps)))
    rows = Rows()
    pending = Pending()
    for s in range(3):
        pending.put(s, [torch.tensor(float(s))], rows)
    pending.put(3, [torch.tensor(3.0), torch.tensor(4.0)],
                lambda s, a: seen.append(("run", [3, 4])))
    for s in range(5, 7):
        pending.put(s, [torch.tensor(float(s))], rows)
    pending.flush()
    assert seen == [("rows", [0, 1, 2]), ("run", [3, 4]), ("rows", [5, 6])]
