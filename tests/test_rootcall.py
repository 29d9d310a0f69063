"""The root's interception on lean and steady steps (``capture.rootcall``): torch's seam
for a compiled call instead of a forward hook, which would send every call of the model
down torch's slower hooked path. The model must run, copy, pickle and compile exactly as
without it."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

import nbdebug
from nbdebug.capture.rootcall import RootCall, compiled, root_hook


class Counter:
    root_calls = 0


class Scaled(nn.Module):
    """A forward with a keyword argument."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return self.lin(x) * scale


class OwnSetattr(Scaled):
    """A ``__setattr__`` of its own that keeps nothing it does not know."""

    def __setattr__(self, name, value):
        if name != "_compiled_call_impl":
            super().__setattr__(name, value)


class OwnState(Scaled):
    """A ``__getstate__`` of its own that keeps the whole ``__dict__``: a shallow copy
    would share the seam's value."""

    def __getstate__(self):
        return dict(self.__dict__)


def test_the_module_runs_as_before_its_own_hooks_included_then_the_hook():
    torch.manual_seed(0)
    m, x = Scaled(), torch.randn(4, 3)
    m.register_forward_hook(lambda mod, args, out: out + 1)     # the user's own
    want = m(x, scale=2.0)
    seen, counter = [], Counter()
    h = root_hook(m, lambda *a: seen.append(a), [m], counter)
    assert isinstance(h, RootCall) and not compiled(m)
    got = m(x, scale=2.0)
    assert torch.equal(got, want)
    (mod, args, out), = seen
    assert mod is m and args == (x,) and out is got and counter.root_calls == 1
    h.remove()
    assert "_compiled_call_impl" not in vars(m)
    m(x)
    assert len(seen) == 1


def test_copies_made_under_the_seam_run_their_own_weights():
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    for m in (Scaled(), nn.Sequential(nn.Linear(3, 2)), OwnSetattr()):
        seen: list = []
        h = root_hook(m, lambda *a: seen.append(a[0]), [m], Counter())
        assert isinstance(h, RootCall)
        m(x)
        assert seen == [m]                      # (a class's own __setattr__ aside)
        seen.clear()
        buf = io.BytesIO()
        torch.save(m, buf)
        buf.seek(0)
        deep = [copy.deepcopy(m), torch.load(buf, weights_only=False)]
        shallow = copy.copy(m)                  # (shares the submodules: the weights)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)                    # the original trains on
        for c in deep + [shallow]:
            assert vars(c).get("_compiled_call_impl") is None
            c(x)
        assert seen == []                       # none of them calls the original's seam
        for c in deep:
            assert not torch.equal(c(x), m(x))
        h.remove()


def test_a_model_that_calls_another_way_keeps_torchs_forward_hook():
    class OwnCall(nn.Linear):
        def __call__(self, *args, **kwargs):
            return super().__call__(*args, **kwargs)

    class OwnCopy(nn.Linear):
        def __copy__(self):
            return self

    class OwnLookup(nn.Linear):
        def __getattribute__(self, name):
            return super().__getattribute__(name)

    lazy = nn.Linear(3, 2)
    lazy.compile()                     # (compiles on its first call, which never comes)
    wrapped_inner = nn.Linear(3, 2)
    wrapper = torch.compile(wrapped_inner)
    replicated = nn.Linear(3, 2)       # (each replica would copy its __dict__, the seam too)
    parallel = nn.DataParallel(replicated)
    scripted = torch.jit.script(nn.Linear(3, 2))
    cases = [(OwnCall(3, 2), []), (lazy, []), (wrapped_inner, [wrapper]), (wrapper, []),
             (OwnState(), []), (OwnCopy(3, 2), []), (OwnLookup(3, 2), []),
             (replicated, [parallel])]
    for m, models in cases:
        before = vars(m).get("_compiled_call_impl")
        h = root_hook(m, lambda *a: None, [m, *models], Counter())
        assert isinstance(h, RemovableHandle), type(m)
        assert vars(m).get("_compiled_call_impl") is before
        h.remove()
    import nbdebug.capture.rootcall as rootcall
    assert rootcall.SEAM                # (this torch has it: 2.2 and later)
    plain = nn.Linear(3, 2)
    rootcall.SEAM = False               # an older torch: torch's hook, the seam untouched
    try:
        h = root_hook(plain, lambda *a: None, [plain], Counter())
    finally:
        rootcall.SEAM = True
    assert isinstance(h, RemovableHandle) and "_compiled_call_impl" not in vars(plain)
    h.remove()
    with pytest.raises(RuntimeError, match="not supported on ScriptModules"):
        root_hook(scripted, lambda *a: None, [scripted], Counter())     # as torch's own
    assert compiled(lazy) and compiled(wrapper) and not compiled(wrapped_inner)


def _losses(model, steps, compile_at=None, seen=None):
    torch.manual_seed(1)
    X, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for i in range(steps):
        if i == compile_at:
            if seen is not None:
                seen.append(vars(model).get("_compiled_call_impl"))
            model.compile(backend="eager")
        loss = nn.functional.cross_entropy(model(X[i % 4 * 16:][:16]), y[i % 4 * 16:][:16])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))


def test_compiling_the_model_in_the_middle_of_steady_steps_changes_nothing():
    """``model.compile()`` inside the loop, after the steps went steady, takes the seam
    over: the training is the same bitwise, every step is counted and nothing is left."""
    bare = _losses(_net(), 60, compile_at=30)
    net, seam = _net(), []
    with nbdebug.diagnose(quiet=True):
        watched = _losses(net, 60, compile_at=30, seen=seam)
    report = nbdebug.last_report()
    assert isinstance(seam[0], RootCall)       # (the case the test is about)
    assert torch.equal(bare, watched)
    assert report.run["steps"] == 60 and not report.errors, report.errors
    assert report.timelines["loss"]["steps"] == list(range(60))
    assert vars(net)["_compiled_call_impl"] is not None and not net._forward_hooks


def test_a_model_that_torch_compile_wraps_trains_the_same_and_keeps_its_seam_free():
    bare = _losses(torch.compile(_net(), backend="eager"), 60)
    net = _net()
    wrapper = torch.compile(net, backend="eager")
    with nbdebug.diagnose(quiet=True):
        watched = _losses(wrapper, 60)
    report = nbdebug.last_report()
    assert torch.equal(bare, watched)
    assert report.run["steps"] == 60 and not report.errors, report.errors
    assert report.timelines["loss"]["steps"] == list(range(60))
    assert "_compiled_call_impl" not in vars(net) and not net._forward_hooks
