"""Steady steps cost almost nothing: at most two interceptions and one tensor operation.

A profiler counts every entry into nbdebug's code from outside it (an interception: a
hook or a wrapper torch or the user's code calls), and a TorchFunctionMode counts every
torch call nbdebug's own frames make (metadata reads such as ``.dim()`` aside), per
iteration of the training loop. After the warm-up, the early audits and away from the
sampled steps, flushes and epoch ends, every step must stay within the budget, and most
steps must be steady (so the test cannot pass by watching nothing).
"""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader, TensorDataset

import nbdebug

PACKAGE = os.path.dirname(nbdebug.__file__)
#: reads of a tensor's metadata: no kernel, no data touched
METADATA = {"dim", "size", "numel", "is_floating_point", "element_size", "is_complex",
            "__get__", "stride", "is_contiguous", "data_ptr", "backward"}


class Counter(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: dict[int, list[str]] = {}
        self.entries: dict[int, list[str]] = {}
        self.step = -1

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", str(func))
        caller = sys._getframe(1)
        if caller.f_code.co_filename.startswith(PACKAGE) and name not in METADATA:
            self.ops.setdefault(self.step, []).append(
                f"{name} ({os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno})")
        return func(*args, **(kwargs or {}))

    def profile(self, frame, event, arg):
        if event != "call" or not frame.f_code.co_filename.startswith(PACKAGE):
            return
        back = frame.f_back
        if back is not None and not back.f_code.co_filename.startswith(PACKAGE):
            # (this test's own look at the mode, and its mode passing a call on)
            if frame.f_code.co_name == "mode" or back.f_code.co_name == "__torch_function__":
                return
            self.entries.setdefault(self.step, []).append(
                f"{frame.f_code.co_name} ({os.path.basename(frame.f_code.co_filename)}) "
                f"from {os.path.basename(back.f_code.co_filename)}:{back.f_code.co_name}")


def _train(model, loader, opt, epochs, counter, modes, spans=None, hooked=None):
    step = 0
    with nbdebug.diagnose(quiet=True) as session:
        sys.setprofile(counter.profile)
        try:
            with counter:
                for _ in range(epochs):
                    for x, y in loader:
                        counter.step = step
                        modes[step] = session.capture.mode
                        if spans is not None:
                            spans[step] = session.capture.span.open
                        if hooked is not None:      # torch's hooked call path taken
                            hooked[step] = bool(model._forward_hooks
                                                or model._forward_pre_hooks)
                        loss = nn.functional.cross_entropy(model(x), y)
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                        step += 1
                counter.step = -1
        finally:
            sys.setprofile(None)
    return session, step


def _mlp(optimizer):
    """A small MLP on 1280 random samples, 80 batches a epoch, and its optimizer."""
    torch.manual_seed(0)
    X, y = torch.randn(1280, 16), torch.randint(0, 4, (1280,))
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    return loader, model, optimizer(model.parameters(), lr=1e-3)


def _fit(loader, model, opt, where="before backward", every=None):
    """Three epochs under nbdebug, gradients zeroed ``where`` in the step; the session
    and the report."""
    with nbdebug.diagnose(quiet=True, every=every) as session:
        for _ in range(3):
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                if where == "before backward":
                    opt.zero_grad()
                elif where == "to zeros":
                    opt.zero_grad(set_to_none=False)
                loss.backward()
                opt.step()
                if where == "after the update":
                    model.zero_grad()
    return session, nbdebug.last_report()


def _spy(monkeypatch, owner, name, note):
    """Wrap ``owner.name``: each call appends ``note(self, result)`` to the list returned."""
    seen, method = [], getattr(owner, name)

    def spied(self, *args):
        result = method(self, *args)
        seen.append(note(self, result))
        return result
    monkeypatch.setattr(owner, name, spied)
    return seen


def test_a_steady_step_costs_two_interceptions_and_one_tensor_operation():
    loader, model, opt = _mlp(torch.optim.Adam)                  # 80 batches a epoch
    counter, modes, spans, hooked = Counter(), {}, {}, {}
    session, steps = _train(model, loader, opt, 4, counter, modes, spans, hooked)
    report = nbdebug.last_report()
    assert steps == 320 and report.run["steps"] == 320 and not report.errors
    interval = report.run["sampling"]["interval"]
    # a step ran steady throughout when the loop saw a steady span open at its start and
    # at the next step's start (the step before a sampled one turns full at its forward;
    # the first step of a span is seen the general way). Where a span closes is amortised
    # like the sampled steps: a flush (every 50 steps) and an epoch's end, where the span
    # hands its steps over (the early audits of the first two epochs, the batch order's
    # fingerprints of point 6, run then)
    # light samples (the training accuracy, the activations' shares) are sampled steps: a
    # point of the accuracy covers 32 samples, two steps of batches of 16, the second kept
    # armed by the first
    full = set(report.timelines["output"]["steps"])      # (the model output's summary)
    points = set(report.timelines["train_acc"]["steps"])
    ends = sorted(points - full - {s + 1 for s in full})
    light = sorted({s for p in ends for s in (p - 1, p)} | {s + 1 for s in full} & points)
    checked = [s for s in range(12, steps - 1) if modes[s] == modes[s + 1] == "steady"
               and spans[s] and spans[s + 1] and s % 50 and s % 80 not in (0, 79)
               and s not in light and s + 1 not in light]
    assert len(checked) >= 200, (interval, sorted(set(modes.values())))
    for s in checked:
        assert len(counter.entries.get(s, [])) <= 2, (s, counter.entries[s])
        assert len(counter.ops.get(s, [])) <= 1, (s, counter.ops[s])
        assert not hooked[s]        # the root's interception is a RootCall, not a hook
    # ... that stay on the span: the step before one takes a third interception (its next
    # batch's labels caught), the first a fourth (the ReLU's hook) and a fifth (its
    # optimizer's step, wrapped for that step only), and each a few operations (the
    # accuracy, the ReLU's alive units; the gradients' norms, the update's ratios)
    quiet = [s for s in light if s % 50 and s % 80 not in (0, 1, 79) and spans[s - 1]
             and spans[s] and modes[s - 1] == modes[s] == "steady"]
    assert len(quiet) >= 3, (light, report.run["sampling"])
    for s in quiet:
        assert len(counter.entries[s - 1]) <= 5 and len(counter.entries[s]) <= 5, (
            s, counter.entries[s - 1], counter.entries[s])
        assert len(counter.ops[s - 1]) <= 18 and len(counter.ops[s]) <= 18, (
            s, counter.ops[s - 1], counter.ops[s])
    # an epoch's first step stays on the span too: the training loader's next epoch hands
    # the span's steps over between two steps (its ``__iter__``, counted at the step
    # before) and the span goes on
    starts = [s for s in (80, 160, 240) if s % 50 and spans[s] and spans[s + 1]
              and modes[s] == modes[s + 1] == "steady" and s not in light
              and s + 1 not in light and s - 1 not in full]
    assert starts, (starts, sorted(full), light)     # (80 and 160 may be full samples)
    for s in starts:
        assert len(counter.entries.get(s, [])) <= 2, (s, counter.entries[s])
        assert len(counter.ops.get(s, [])) <= 1, (s, counter.ops[s])
    # what the steady steps still did: the loss curve has every step, the counts are whole
    assert report.timelines["loss"]["steps"] == list(range(steps))   # in order, each once
    assert report.run["epochs"] == 4 and report.run["loaders"][0]["batches"] == 320
    assert report.run["optimizers"][0]["steps"] == 320
    obs = session.capture.obs        # what the spans handed over in bulk, step by step
    assert obs.train_batch_sizes == {16: 320}
    assert len(obs.input_fingerprints) == 2 * 80 + 2
    assert obs.dynamics["steps_seen"] == 320
    # the sampled steps still took their statistics
    assert len(report.timelines["output"]["steps"]) >= steps // interval - 1


def test_steady_steps_leave_for_a_held_out_pass_and_come_back():
    """A validation loop every epoch: its rounds are all seen, with their accuracy."""
    torch.manual_seed(0)
    X, y = torch.randn(960, 16), torch.randint(0, 4, (960,))
    train = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)      # 60 a epoch
    val = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    modes = []
    with nbdebug.diagnose(quiet=True) as session:
        for _ in range(3):
            model.train()
            for xb, yb in train:
                modes.append(session.capture.mode)
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for xb, yb in val:
                    model(xb)
    report = nbdebug.last_report()
    assert modes.count("steady") > 60
    rounds = report.timelines["eval/val"]["values"]
    assert [r["round"] for r in rounds] == [1, 2, 3] and all(r["n"] == 64 for r in rounds)
    roles = {ld["name"]: (ld["role"], ld["batches"]) for ld in report.run["loaders"]}
    assert roles == {"train": ("train", 180), "val": ("eval", 6)}
    assert report.run["steps"] == 180 and report.run["epochs"] == 3


@pytest.mark.parametrize("where", ["before backward", "after the update", "to zeros", "never"])
def test_the_step_before_a_sampled_one_stays_on_the_span_and_zero_grad_is_still_judged(
        monkeypatch, where):
    """The step before each sampled step runs on the span until its optimizer step (its
    update is hooked, and that hook turns the sampled step full): that update and the
    sampled step's are still a consecutive pair, so a loop that never zeroes its gradients
    is found, and one that zeroes them anywhere in the step is not. (A full sample every
    10 steps: by default, cheap steps take few.)"""
    from nbdebug.capture.steady import Span
    taken = _spy(monkeypatch, Span, "take_last", lambda span, took: took)
    session, report = _fit(*_mlp(torch.optim.SGD), where, every=10)
    assert report.run["steps"] == 240 and report.run["optimizers"][0]["steps"] == 240
    assert sum(taken) >= 8, taken              # the span took the step before each sample
    sampler = session.capture.sampler           # ... and its cost counts in the sample's
    # (the last one taken may be the run's last step, which chooses no next step)
    assert sum(taken) - 1 <= sampler._pre_own_steps <= sum(taken)
    assert sampler._pre_own_seconds > 0
    stale = report.timelines["stale_grad"]["values"]
    assert len(stale) >= 8
    found = [f for f in report.findings if f.check == "zero-grad"]
    if where == "never":
        assert found and found[0].severity in ("warning", "problem")
    else:
        assert not found and not any(stale), stale


def test_the_step_after_a_sampled_one_starts_on_the_span(monkeypatch):
    """After a sampled step's update the span opens at once (``Span.resume``): the next
    step's forward takes the hot path, not the general one, and every step, loss and
    batch is still handed over once, in order."""
    from nbdebug.capture.forwards import Forwards
    general = _spy(monkeypatch, Forwards, "_steady_general",
                   lambda capture, _: capture.ctx.step)
    session, report = _fit(*_mlp(torch.optim.Adam), every=10)
    sampled = [s for s in report.timelines["output"]["steps"] if s > 20]
    assert len(sampled) >= 8
    assert not [s + 1 for s in sampled if s + 1 in general], (sampled, general)
    assert report.run["steps"] == 240 and report.timelines["loss"]["steps"] == list(range(240))
    assert session.capture.obs.train_batch_sizes == {16: 240}
    assert report.run["optimizers"][0]["steps"] == 240 and not report.errors
