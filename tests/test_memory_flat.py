"""Invariant 5: nbdebug's host memory is bounded by its caps, not by the number of steps.

The MLP trains through ``nbdebug.diagnose()`` for N and then 4N small-batch steps, with a
held-out pass each epoch, statistics on every step (``every=1``) and a live listener;
``tracemalloc`` counts only what nbdebug's own files allocate, sampled at every flush
(the peak) and after the report is built. Memory is not timed.

Every per-run store of nbdebug is capped: timelines (``SERIES_LIMIT`` points, decimated
by two when full), input fingerprints (``FINGERPRINT_BATCHES``), the first batches' input
and label statistics (20), the pending device values (one flush window). The real caps
are reached after thousands of steps; here two of them are lowered so that N steps are
already past every cap and the test stays fast: from then on, 4x the steps must not
need more memory. The real values of the caps are asserted as they ship.
"""

from __future__ import annotations

import tracemalloc

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nbdebug
from nbdebug import observations
from nbdebug.capture import audits

CAP = 32                     # lowered SERIES_LIMIT and FINGERPRINT_BATCHES
N = 96                       # steps: three times past every cap
_NBDEBUG = [tracemalloc.Filter(True, "*/nbdebug/*")]


def _nbdebug_bytes() -> int:
    snap = tracemalloc.take_snapshot().filter_traces(_NBDEBUG)
    return sum(stat.size for stat in snap.statistics("filename"))


def _train(steps: int, eval_every_step: bool = False) -> tuple[int, int, object]:
    """(peak over the flushes, bytes held after the report, report) of nbdebug."""
    torch.manual_seed(0)
    X = torch.randn(64, 8)
    y = (X[:, 0] > 0).long()
    train = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True)
    val = DataLoader(TensorDataset(X[:16], y[:16]), batch_size=8)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    samples: list[int] = []
    tracemalloc.start()
    try:
        session = nbdebug.diagnose(quiet=True, every=1)
        session.listeners.append(lambda obs: samples.append(_nbdebug_bytes()))
        done = 0
        with session:
            while done < steps:
                net.train()
                for xb, yb in train:
                    loss = nn.functional.cross_entropy(net(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    done += 1
                    if eval_every_step or done == steps:
                        break
                net.eval()
                with torch.no_grad():
                    for xb, _ in val:
                        net(xb)
        after = _nbdebug_bytes()
    finally:
        tracemalloc.stop()
    report = nbdebug.last_report()
    assert report.errors == [] and report.run["steps"] == steps
    return max(samples + [after]), after, report


@pytest.fixture
def low_caps(monkeypatch):
    monkeypatch.setattr(observations, "SERIES_LIMIT", CAP)
    monkeypatch.setattr(audits, "FINGERPRINT_BATCHES", CAP)
    torch.set_num_threads(1)
    _train(CAP)                          # imports and one-time allocations, not counted


def test_the_caps_as_shipped():
    assert observations.SERIES_LIMIT == 2048 and observations.Series().limit == 2048
    s = observations.Series()
    for i in range(3 * 2048 + 5):
        s.add(i, float(i))
    assert len(s) < 2048 and s.steps[0] == 0          # the whole run, evenly thinned
    gaps = {b - a for a, b in zip(s.steps, s.steps[1:])}
    assert gaps == {4}
    assert audits.FINGERPRINT_BATCHES == 512


def test_a_run_of_points_added_at_once_is_thinned_as_one_at_a_time():
    import random
    rng = random.Random(0)
    for trial in range(2000):
        limit = rng.choice([2, 3, 4, 8, 16, 2048])
        one, bulk = observations.Series(limit=limit), observations.Series(limit=limit)
        step = 0
        for _ in range(rng.randint(1, 12)):
            n = rng.choice([0, 1, 2, 5, 17, 100, 400])
            steps = list(range(step, step + n))
            step += n
            for s in steps:
                one.add(s, -s)
            bulk.extend(steps, [-s for s in steps])
            assert (one.steps, one.values, one.stride) == (bulk.steps, bulk.values,
                                                           bulk.stride), (trial, limit)


def test_host_memory_is_flat_over_four_times_the_steps(low_caps):
    peak_n, after_n, report_n = _train(N)
    peak_4n, after_4n, report_4n = _train(4 * N)
    for report in (report_n, report_4n):
        assert report.timelines["loss"]["steps"]              # really recorded
        for name, series in report.timelines.items():
            assert len(series["steps"]) <= CAP, name          # every timeline capped
    # 4x the steps (and 4x the held-out rounds): at most 15% more, never 4x
    assert peak_4n <= 1.15 * peak_n, (peak_n, peak_4n)
    assert after_4n <= 1.15 * after_n, (after_n, after_4n)


def test_host_memory_is_flat_with_a_held_out_pass_every_step(low_caps):
    peak_n, _, _ = _train(N // 2, eval_every_step=True)
    peak_4n, _, _ = _train(2 * N, eval_every_step=True)
    assert peak_4n <= 1.15 * peak_n, (peak_n, peak_4n)
