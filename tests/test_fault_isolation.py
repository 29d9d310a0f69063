"""Invariant 3 for every layer: a fault inside nbdebug never breaks or changes the cell.

A failure is injected (monkeypatch) into a check, into the stats layer's reducers and its
host flush, and into each renderer (the text at the end of the cell, the live dashboard's
plots and checklist, the static HTML report, ``%nbdebug report``). Each time, through the
real ``%%diagnose`` in a real IPython shell: the training runs exactly as it does without
nbdebug (same losses, same parameters, bitwise), the report lists the fault under
``errors`` with its traceback (in memory and in the ``--save`` file), and the user sees
exactly one line about it. The fault's message has two lines on purpose.

The dashboard cases run in the terminal shell with its notebook detection answered yes:
the same Dashboard object, widgets and hand-over a notebook gets; the last test does the
same in a real kernel (nbclient).
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import diagnose_cell, run_cell
from test_invariants import SETUP

FAULT = "nbdebug-fault\nsecond line of the fault"
# 7 epochs of 8 steps: past the flush at step 50, so the live view redraws mid-run
TRAIN = """
losses = []
for epoch in range(7):
    model.train()
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.detach().clone())
    model.eval()
    with torch.no_grad():
        model(X[:64])
"""
STEPS = 56


def _boom(*args, **kwargs):
    raise RuntimeError(FAULT)


def _inject(monkeypatch, fault: str) -> None:
    import nbdebug.checks
    from nbdebug.capture.probes import losses as loss_probe
    from nbdebug.checks.registry import REGISTRY
    from nbdebug.stats import buffers, summary
    from nbdebug.ui import html, plots, text
    targets = {
        # (a) a check: its outcome becomes "not checked", the others still run
        "check": (REGISTRY["sgd-momentum"], "fn"),
        # (b) the stats layer: the tensor summaries (summarize and feature_moments fail
        # from inside nbdebug/stats), the label histogram, the flush to the host
        "stats.summary": (summary, "check_supported"),
        "stats.label_histogram": (loss_probe, "label_histogram"),
        "stats.flush": (buffers.Pending, "flush"),
        # building the report from what was seen
        "report": (nbdebug.checks, "checklist"),
        # (c) the renderers
        "render.text": (text, "render_text"),
        "render.html": (html, "render_html"),
        "render.plots": (plots, "render_png"),
        "render.checklist": (html, "render_checklist"),
    }
    owner, name = targets[fault]
    monkeypatch.setattr(owner, name, _boom)


def _train(ip, flags: str | None):
    """SETUP + TRAIN, bare (flags None) or under %%diagnose FLAGS: (losses, params, report)."""
    run_cell(ip, SETUP["mlp"])
    if flags is None:
        result, report = run_cell(ip, TRAIN), None
    else:
        result, report = diagnose_cell(ip, TRAIN, flags=flags)
    assert result.error_in_exec is None, result.error_in_exec
    assert result.success
    ns = ip.user_ns
    return ns["losses"], {k: v.clone() for k, v in ns["model"].state_dict().items()}, report


def _same_training(a, b) -> None:
    losses_a, params_a = a[:2]
    losses_b, params_b = b[:2]
    assert len(losses_a) == len(losses_b) == STEPS
    assert all(torch.equal(x, y) for x, y in zip(losses_a, losses_b))
    assert params_a.keys() == params_b.keys()
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)


def _listed_with_traceback(errors: list[dict]) -> None:
    assert errors, "the fault is not listed in report.errors"
    for e in errors:
        assert set(e) >= {"where", "error", "traceback"}, e
        assert isinstance(e["traceback"], str) and e["traceback"].startswith("Traceback"), e
    assert any("nbdebug-fault" in e["traceback"] and "_boom" in e["traceback"] for e in errors)


def _one_line_about_it(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "internal error" in lines[0] and "training unaffected" in lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("fault", ["check", "stats.summary", "stats.label_histogram",
                                   "stats.flush", "report", "render.text"])
def test_a_fault_is_listed_and_said_in_one_line_and_training_is_unchanged(
        ip, capsys, monkeypatch, tmp_path, fault):
    bare = _train(ip, None)
    capsys.readouterr()
    _inject(monkeypatch, fault)
    saved = tmp_path / "report.json"
    diagnosed = _train(ip, f"--every 1 --save {saved}")
    monkeypatch.undo()
    _same_training(bare, diagnosed)
    report = diagnosed[2]
    assert report.run["status"] == "done"
    assert report.run.get("steps") == (None if fault == "report" else STEPS)
    _listed_with_traceback(report.errors)
    _listed_with_traceback(json.loads(saved.read_text())["errors"])
    out, err = capsys.readouterr()
    _one_line_about_it(err)
    if fault == "render.text":
        assert "nbdebug: 56 steps" not in out       # nothing else could be shown
        assert report.errors[-1]["where"] == "text report"
    elif fault != "report":
        assert out.startswith("nbdebug: 56 steps")  # the report itself is still shown
    if fault == "check":
        assert report.status(8) == "not_checked" and report.status(6) == "ok"
    if fault == "stats.summary":                    # the loss and gradients still recorded
        assert len(report.timelines["loss"]["steps"]) == STEPS
        assert len(report.timelines["grad_norm"]["steps"]) == STEPS


@pytest.mark.parametrize("fault", ["set-up", "capture", "capture.attach",
                                   "distributed.attach"])
def test_a_diagnosis_that_cannot_start_lets_the_cell_run_as_without_it(
        ip, capsys, monkeypatch, tmp_path, fault):
    """Starting fails (preparing the session, building the capture, midway through its
    hooks, or the torchrun merger): everything is undone and the cell runs undiagnosed,
    never failed."""
    from nbdebug import distributed, session
    from nbdebug.capture import core
    from nbdebug.capture.probes import gradients
    from test_invariants import _nbdebug_leftovers
    bare = _train(ip, None)
    capsys.readouterr()
    owner, name = {"set-up": (session, "validate_checks"),
                   "capture": (core.Capture, "__init__"),
                   "capture.attach": (gradients.GradientProbe, "attach"),   # hooks are in
                   "distributed.attach": (distributed, "attach")}[fault]
    monkeypatch.setattr(owner, name, _boom)
    saved = tmp_path / "report.json"
    diagnosed = _train(ip, f"--save {saved}")
    monkeypatch.undo()
    assert _nbdebug_leftovers() == []
    _same_training(bare, diagnosed)
    report = diagnosed[2]
    assert report.run["status"] == "done" and report.notes[0].startswith("not watched")
    _listed_with_traceback(report.errors)
    assert report.errors[0]["where"] == ("set-up" if fault == "set-up" else "attach")
    _listed_with_traceback(json.loads(saved.read_text())["errors"])
    out, err = capsys.readouterr()
    _one_line_about_it(err)
    assert out == ""


@pytest.mark.parametrize("fault", ["render.html", "render.plots", "render.checklist"])
def test_a_broken_dashboard_renderer_falls_back_to_text_in_one_line(
        ip, capsys, monkeypatch, tmp_path, notebook_frontend, fault):
    bare = _train(ip, None)
    capsys.readouterr()
    _inject(monkeypatch, fault)
    saved = tmp_path / "report.json"
    diagnosed = _train(ip, f"--save {saved}")
    dash = notebook_frontend.LAST_DASHBOARD[0]
    monkeypatch.undo()
    _same_training(bare, diagnosed)
    report = diagnosed[2]
    _listed_with_traceback(report.errors)
    assert any(e["where"] == "show the report" for e in report.errors)
    _listed_with_traceback(json.loads(saved.read_text())["errors"])
    out, err = capsys.readouterr()
    _one_line_about_it(err)
    assert "nbdebug: 56 steps" in out               # the text report in place of the HTML
    # the live view was there, and does not go on saying "running"
    assert 'class="nbd-state">done<' in dash.header.value


def test_nbdebug_report_with_a_broken_renderer_says_one_line(ip, capsys, monkeypatch):
    run_cell(ip, SETUP["mlp"])
    diagnose_cell(ip, TRAIN)
    capsys.readouterr()
    _inject(monkeypatch, "render.text")
    result = run_cell(ip, "%nbdebug report")
    assert result.success
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "nbdebug-fault" in lines[0] and out == ""


def test_nbdebug_report_and_explain_fall_back_to_text_when_html_fails(
        ip, capsys, monkeypatch, notebook_frontend):
    from nbdebug.ui import html
    run_cell(ip, SETUP["mlp"])
    diagnose_cell(ip, TRAIN)
    capsys.readouterr()
    _inject(monkeypatch, "render.html")
    monkeypatch.setattr(html, "render_explain", _boom)
    for line, first in (("%nbdebug report", "nbdebug: 56 steps"),
                        ("%nbdebug explain 13", "Point 13")):
        result = run_cell(ip, line)
        assert result.success
        out, err = capsys.readouterr()
        assert len(err.strip().splitlines()) == 1 and "nbdebug-fault" in err
        assert out.startswith(first)


SIDEBAR_TROUBLE = """
from nbdebug.frontend import _BRIDGES
bridge = next(iter(_BRIDGES.values()))

class GoneComm:                      # a page reloaded: its data comm is dead
    comm_id = "stale"
    def send(self, msg):
        raise OSError("socket gone")
    def close(self):
        pass

bridge.data_comms.append(GoneComm())
bridge.on_control(None, {"type": "reboot"})
bridge.on_control(None, {"type": "hello", "version": 999})
bridge.on_control(None, "__import__('os').system('true')")
bridge._send({"type": "done"})
print(len(bridge.ignored), any(isinstance(c, GoneComm) for c in bridge.data_comms))
"""


@pytest.fixture(scope="module")
def kernel_run():
    """One real kernel (nbclient): a bare run, the same run with the HTML renderer broken
    under %%diagnose, then trouble from the sidebar's side."""
    from notebook_util import execute, notebook
    setup = "%load_ext nbdebug\n" + SETUP["mlp"]
    bare = TRAIN + "\nbare = [float(v) for v in losses]"
    inject = ("import nbdebug.ui.html\n"
              "def _boom(*a, **k):\n"
              f"    raise RuntimeError({FAULT!r})\n"
              "nbdebug.ui.html.render_html = _boom")
    check = ("import json, nbdebug\nr = nbdebug.last_report()\n"
             "print(json.dumps({'same': bare == [float(v) for v in losses], "
             "'errors': r.errors, 'steps': r.run['steps']}))")
    return execute(notebook(setup, bare, setup, inject, "%%diagnose\n" + TRAIN, check,
                            SIDEBAR_TROUBLE))


def _streams(cell, name: str) -> str:
    return "".join(o.text for o in cell.outputs
                   if o.output_type == "stream" and o.name == name)


@pytest.mark.slow
def test_a_broken_html_renderer_in_a_real_kernel(kernel_run):
    """The same fault where users meet it: a Jupyter kernel, the live widget, its hand-over."""
    from notebook_util import REPORT_MIME, display_outputs
    cell = kernel_run.cells[4]
    assert not [o for o in cell.outputs if o.output_type == "error"]
    _one_line_about_it(_streams(cell, "stderr"))
    # the text report instead of the HTML one
    assert _streams(cell, "stdout").startswith("nbdebug: 56 steps")
    assert not any(REPORT_MIME in o.data for o in display_outputs(cell))
    facts = json.loads(kernel_run.cells[5].outputs[0].text)
    assert facts["same"] and facts["steps"] == STEPS
    _listed_with_traceback(facts["errors"])


@pytest.mark.slow
def test_sidebar_trouble_stays_out_of_the_users_cell(kernel_run):
    """A dead data comm and rejected control messages are logged to the kernel's log, not
    printed (with tracebacks) under whatever cell is running."""
    cell = kernel_run.cells[6]
    assert not [o for o in cell.outputs if o.output_type == "error"]
    assert _streams(cell, "stdout") == "3 False\n"     # rejected, and the dead comm dropped
    assert _streams(cell, "stderr") == ""


def test_one_failing_sink_does_not_drop_the_other_values_of_a_flush():
    """The host flush hands every value out even when one consumer of them fails."""
    from nbdebug.stats import Pending
    seen: list[float] = []
    pending = Pending()
    pending.put(0, torch.tensor(1.0), lambda s, a: seen.append(float(a)))
    pending.put(0, torch.tensor(2.0), _boom)
    pending.put(1, torch.tensor([3.0, 4.0]), lambda s, a: seen.extend(a.tolist()))
    with pytest.raises(RuntimeError, match="nbdebug-fault"):
        pending.flush()                  # the caller records it as an internal error
    assert seen == [1.0, 3.0, 4.0] and len(pending) == 0


def test_a_clean_up_that_fails_is_listed_with_its_traceback(capsys):
    """A patch nbdebug cannot undo: the rest is still undone, the entry has a traceback."""
    import nbdebug
    from test_invariants import _nbdebug_leftovers

    class Sticky:
        def __delattr__(self, name):
            raise RuntimeError(FAULT)

    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with nbdebug.diagnose(quiet=True) as session:
        session.capture.patches.patch(Sticky(), "x", 1)
        for _ in range(3):
            opt.zero_grad(); net(torch.ones(2, 3)).sum().backward(); opt.step()
    report = nbdebug.last_report()
    assert _nbdebug_leftovers() == []
    assert report.run["steps"] == 3
    [error] = [e for e in report.errors if "nbdebug-fault" in e["error"]]
    assert error["where"] == "detach"
    assert error["traceback"].startswith("Traceback") and "__delattr__" in error["traceback"]
    _one_line_about_it(capsys.readouterr().err)


def test_the_python_api_runs_the_block_when_the_diagnosis_cannot_start(monkeypatch, capsys):
    import nbdebug
    from nbdebug import session
    monkeypatch.setattr(session, "validate_checks", _boom)
    ran = []
    with nbdebug.diagnose(quiet=True):
        ran.append(True)
    assert ran == [True]
    report = nbdebug.last_report()
    assert report.run["status"] == "done" and report.errors[0]["where"] == "set-up"
    _listed_with_traceback(report.errors)
    _one_line_about_it(capsys.readouterr().err)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown check"):   # a usage error is still one
        nbdebug.diagnose(checks="no-such-check")


def test_a_report_is_written_atomically(tmp_path, monkeypatch):
    """A save that fails half-way leaves the previous report whole and no stray file."""
    import os

    from nbdebug.report import Report
    target = tmp_path / "report.json"
    Report().save(target)
    before = target.read_text()

    def broken(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", broken)
    report = Report()
    report.run = {"status": "done", "steps": 12345}
    with pytest.raises(OSError):
        report.save(target)
    assert target.read_text() == before
    assert [f.name for f in tmp_path.iterdir()] == ["report.json"]
