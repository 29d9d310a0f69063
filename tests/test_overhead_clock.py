"""The correction of nbdebug's own clock on a CPU (``cost.SpanClock``): hooked steps are
timed against steady ones between spans, and nothing but training steps is compared."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from nbdebug.capture.cost import MAX_SCALE, SpanClock


def _spans(clock, steady_step, hooked, start=0.0, step=10):
    """Spans of 20 steady steps at ``steady_step`` s each; between them ``hooked``: a list
    of (step periods, seconds, own seconds)."""
    now, own = start, 0.0
    for periods, seconds, own_seconds in hooked:
        clock.opened(now, own, step)
        now += 20 * steady_step
        step += 20
        clock.closed(now, own, step, at_forward=True)
        now += seconds
        own += own_seconds
        step += periods
    clock.opened(now, own, step)
    return now, own, step


def test_the_hooked_steps_extra_over_the_clock_scales_it():
    clock = SpanClock()
    # two hooked steps between spans: 1 ms each beyond a 0.5 ms step; the clock saw 0.5 ms
    _spans(clock, 5e-4, [(2, 2 * 5e-4 + 2e-3, 1e-3)] * 5)
    assert clock.scale() == pytest.approx(2.0)
    clock = SpanClock()
    _spans(clock, 5e-4, [(2, 2 * 5e-4 + 1.5e-3, 1e-3)] * 5)
    assert clock.scale() == pytest.approx(1.5)
    clock = SpanClock()                   # the clock saw more than the extra: no correction
    _spans(clock, 5e-4, [(2, 2 * 5e-4 + 5e-4, 1e-3)] * 5)
    assert clock.scale() == 1.0
    clock = SpanClock()                   # capped
    _spans(clock, 5e-4, [(2, 1.0, 1e-3)] * 5)
    assert clock.scale() == MAX_SCALE


def test_too_few_steps_timed_leave_the_clock_as_it_is():
    clock = SpanClock()
    _spans(clock, 5e-4, [(2, 1.0, 1e-3)])
    assert clock.hooked[1] == 2 and clock.scale() == 1.0


def test_a_held_out_pass_or_a_flush_between_spans_is_not_a_steps_cost():
    clock = SpanClock()
    clock.opened(0.0, 0.0, 10)
    clock.closed(0.01, 0.0, 30, at_forward=True)
    clock.spoil()                         # a held-out pass: the stretch is not compared
    clock.opened(5.0, 1e-3, 32)
    assert clock.hooked == [0.0, 0, 0.0] and clock.steady == [0.01, 20]
    clock.closed(5.01, 1e-3, 52, at_forward=True)
    clock.exclude(0.5)                    # a flush of 0.5 s, on nbdebug's clock too
    clock.opened(5.52, 0.503, 54)
    assert clock.hooked == pytest.approx([0.01, 2, 0.002])
    clock.closed(5.53, 0.503, 60, at_forward=False)   # (mid-step: periods not whole)
    clock.opened(5.6, 0.504, 62)
    assert clock.steady == pytest.approx([0.02, 40]) and clock.hooked[1] == 2


def test_a_real_run_with_held_out_passes_compares_training_steps_only():
    """Each epoch ends with a held-out pass of 0.1 s: none of it may be taken for the cost
    of the hooked steps around it (it would double the clock)."""
    import nbdebug
    torch.manual_seed(0)
    X, y = torch.randn(512, 8), torch.randint(0, 2, (512,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16,
                                         shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:64], y[:64]),
                                      batch_size=32)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with nbdebug.diagnose(quiet=True) as ctx:
        for _ in range(8):
            net.train()
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(net(xb), yb).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                for xb, yb in val:
                    net(xb)
                    time.sleep(0.05)
    clock = ctx.capture.span.clock
    assert clock.steady[1] > 50 and clock.hooked[1] > 0      # both kinds were timed
    assert clock.hooked[0] < 0.1, clock.hooked                # no held-out pass in it
    assert ctx.report.run["overhead"] < 1.0


@pytest.mark.parametrize("context", ["plain", "no_grad", "inference_mode"])
def test_the_calibration_draws_no_random_number_and_works_under_any_grad_mode(
        monkeypatch, context):
    from nbdebug.capture import cost
    from nbdebug.capture.context import Guard
    from nbdebug.capture.patches import ModuleHook
    monkeypatch.setattr(cost, "_CALIBRATED", [])
    torch.manual_seed(3)
    state = torch.get_rng_state()
    backward = torch.Tensor.backward
    mode = {"plain": torch.enable_grad, "no_grad": torch.no_grad,
            "inference_mode": torch.inference_mode}[context]
    with mode():
        per_hook, per_root, per_wrap = cost.calibrate(Guard, ModuleHook)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.Tensor.backward is backward
    # microseconds at most (how many is the benchmark's to say: a busy machine moves it)
    assert 0 <= per_hook < 1e-3 and 0 <= per_root < 1e-3 and 0 <= per_wrap < 1e-3


def test_a_roots_calls_through_the_seam_are_priced_as_such():
    """Each hook call costs what the calibration found for its path: a root's call through
    the seam (``rootcall.RootCall``) its own, every other hook a torch hook's."""
    import nbdebug
    from nbdebug.capture.context import Guard
    from nbdebug.capture.cost import Cost
    from nbdebug.errors import ErrorLog
    cost, guard = Cost(), Guard(ErrorLog())
    cost.per_hook, cost.per_root, cost.per_wrap = 1e-5, 1e-6, 1e-7
    guard.hook_calls, guard.root_calls, guard.wrap_calls = 10, 6, 3
    assert cost.seconds(guard) == pytest.approx(4 * 1e-5 + 6 * 1e-6 + 3 * 1e-7)
    torch.manual_seed(0)
    X, y = torch.randn(512, 8), torch.randint(0, 2, (512,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=16,
                                         shuffle=True)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with nbdebug.diagnose(quiet=True) as ctx:
        for _ in range(3):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(net(xb), yb).backward()
                opt.step()
    guard = ctx.capture.guard
    # the steady and lean steps' forwards (most of the 96) came through the seam
    assert 60 <= guard.root_calls <= 96 and guard.root_calls < guard.hook_calls
