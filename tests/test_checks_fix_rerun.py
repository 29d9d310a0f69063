"""Fix and rerun: for buggy corpus programs whose fix can be pasted, apply the fix the
report suggests to the program's source, rerun it under %%diagnose, and check that the
rerun is healthier: the finding is gone (or its evidence improved) and no new problem
appears.

The numbers come from the finding's structured ``evidence["fix"]`` (``lr``, ``momentum``,
``max_norm``) or from the code the fix text gives to paste; nothing is hard-coded here but
where in each program the fix goes.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch

from test_corpus import parse_text
from conftest import diagnose_cell, run_cell

TESTS = pathlib.Path(__file__).parent


def _run(ip, source: str):
    case = parse_text(source)
    if case["setup"].strip():
        res = run_cell(ip, case["setup"])
        assert res.error_in_exec is None, res.error_in_exec
    result, report = diagnose_cell(ip, case["body"], flags="--quiet")
    assert report is not None and not report.errors, report and report.errors
    return report


def _with_lr(source: str, optimizer_call: str, lr: float, extra: str = "") -> str:
    """The optimizer construction ``optimizer_call`` with its lr replaced (and ``extra``
    keyword arguments added)."""
    assert optimizer_call in source
    fixed = re.sub(r"lr=[0-9.e-]+", f"lr={lr!r}{extra}", optimizer_call, count=1)
    return source.replace(optimizer_call, fixed)


def _paste_after_backward(source: str, code: str) -> str:
    """Insert ``code`` on the line after the (first) ``.backward()`` of the diagnosed cell,
    at its indentation."""
    setup, mark, body = source.partition("# %% diagnose")
    lines = body.split("\n")
    i = next(k for k, line in enumerate(lines) if ".backward()" in line)
    indent = re.match(r"\s*", lines[i]).group(0)
    lines.insert(i + 1, indent + code)
    return setup + mark + "\n".join(lines)


def _clip_call(fix_text: str) -> str:
    m = re.search(r"torch\.nn\.utils\.clip_grad_norm_\(\w+\.parameters\(\), "
                  r"max_norm=[0-9.e+-]+\)", fix_text)
    assert m, fix_text
    return m.group(0)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _problems(report) -> set[str]:
    return {f.check for f in report.problems}


def test_lr_too_large_rerun_with_the_suggested_lr(ip):
    source = (TESTS / "realworld" / "bug_lr_weights_skyrocket.py").read_text()
    before = _run(ip, source)
    f = before.finding("lr-too-large")
    assert f is not None and f.severity == "problem"
    lr = f.evidence["fix"]["lr"]
    assert 0 < lr < 0.35
    after = _run(ip, _with_lr(source, "torch.optim.SGD(model.parameters(), lr=0.35)", lr))
    assert after.finding("lr-too-large") is None
    assert not after.problems, [(x.check, x.message) for x in after.problems]


def test_vanilla_sgd_rerun_with_momentum_and_the_scaled_lr(ip):
    source = (TESTS / "cases" / "dyn_sgd_stalls_deep_tanh.py").read_text()
    before = _run(ip, source)
    f = before.finding("sgd-momentum")
    assert f is not None and f.severity == "warning"
    fix = f.evidence["fix"]
    after = _run(ip, _with_lr(source, "torch.optim.SGD(deep.parameters(), lr=0.01)", fix["lr"],
                              f", momentum={fix['momentum']!r}"))
    assert after.finding("sgd-momentum") is None          # SGD with momentum now
    assert not after.problems and not after.warnings, after.findings
    first = before.timelines["loss"]["values"]
    rerun = after.timelines["loss"]["values"]
    tail = max(3, len(rerun) // 10)
    assert sum(rerun[-tail:]) < sum(first[-tail:])        # it ends lower than before


def test_exploding_gradients_rerun_with_the_suggested_clip(ip):
    source = (TESTS / "cases" / "dyn_explode_regression_sgd.py").read_text()
    before = _run(ip, source)
    f = before.finding("exploding-gradients")
    assert f is not None and f.severity == "problem"
    assert f.evidence["fix"]["max_norm"] >= f.evidence["healthy_median_norm"]
    after = _run(ip, _paste_after_backward(source, _clip_call(f.fix)))
    g = after.finding("exploding-gradients")
    assert g is None or g.evidence["peak_norm"] < f.evidence["peak_norm"]
    assert "nan-origin" not in _problems(after)
    assert _problems(after) <= _problems(before) - {"exploding-gradients", "nan-origin"}


def test_unshuffled_loader_rerun_with_the_suggested_loader(ip):
    source = (TESTS / "realworld" / "bug_iris_sorted_not_shuffled.py").read_text()
    before = _run(ip, source)
    f = before.finding("shuffle")
    assert f is not None and f.severity == "problem"
    m = re.match(r"DataLoader\(dataset, (batch_size=\d+, shuffle=True)\)", f.fix)
    assert m, f.fix
    old = "DataLoader(TensorDataset(X, torch.tensor(y)), batch_size=10)"
    after = _run(ip, source.replace(old, f"DataLoader(TensorDataset(X, torch.tensor(y)), "
                                         f"{m.group(1)})"))
    assert after.finding("shuffle") is None and after.finding("single-label") is None
    assert not after.problems, [(x.check, x.message) for x in after.problems]


def test_gradients_never_zeroed_rerun_with_zero_grad(ip):
    source = (TESTS / "realworld" / "bug_zero_grad_missing.py").read_text()
    before = _run(ip, source)
    f = before.finding("zero-grad")
    assert f is not None and "optimizer.zero_grad()" in f.fix
    setup, mark, body = source.partition("# %% diagnose")
    body = body.replace("        loss.backward()", "        optimizer.zero_grad()\n"
                                                     "        loss.backward()")
    after = _run(ip, setup + mark + body)
    assert after.finding("zero-grad") is None
    assert not after.problems, [(x.check, x.message) for x in after.problems]
