"""%%diagnose and %nbdebug through a real IPython shell."""

from __future__ import annotations

import json
import re

import pytest

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
X = torch.randn(128, 6)
y = (X[:, 0] > 0).long()
net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
"""
TRAIN = """
for i in range(0, 128, 16):
    loss = nn.functional.cross_entropy(net(X[i:i+16]), y[i:i+16])
    opt.zero_grad(); loss.backward(); opt.step()
"""


def test_load_registers_and_unload_removes_exactly(ip):
    magics = ip.magics_manager.magics
    assert "diagnose" in magics["cell"] and "nbdebug" in magics["line"]
    before = {k: set(v) for k, v in magics.items()}
    ip.run_line_magic("unload_ext", "nbdebug")
    after = {k: set(v) for k, v in magics.items()}
    assert before["cell"] - after["cell"] == {"diagnose"}
    assert before["line"] - after["line"] == {"nbdebug"}
    ip.run_line_magic("load_ext", "nbdebug")
    assert "diagnose" in ip.magics_manager.magics["cell"]


def test_help_documents_every_flag(ip):
    doc = ip.find_cell_magic("diagnose").__doc__
    for flag in ("--save", "--every", "--quiet", "--checks", "--model", "--optimizer",
                 "--loader"):
        assert flag in doc


def test_help_is_plain_text(ip):
    doc = ip.find_cell_magic("diagnose").__doc__
    assert doc.startswith("Usage: %%diagnose [--save PATH]")
    assert "::" not in doc and "``" not in doc


def test_checks_lists_every_check_whole_and_aligned(ip, capsys):
    from nbdebug.checks import REGISTRY
    run_cell(ip, "%nbdebug checks")
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    start = lines[0].index("what it finds")
    rows = [ln for ln in lines[1:] if not ln.startswith(" ")]
    assert [r.split()[0] for r in rows] == list(REGISTRY)
    assert all(len(ln) > start and ln[start - 1] == " " and ln[start] != " " for ln in rows)
    assert all(ln[:start].strip() == "" for ln in lines[1:] if ln.startswith(" "))
    flat = " ".join(" ".join(ln[start:].split()) for ln in lines[1:])
    for c in REGISTRY.values():                      # no description cut short
        words = " ".join(c.doc.split("\n\n")[0].split())
        assert words.replace("- ", "-") in flat.replace("- ", "-"), c.id


def test_report_printed_and_namespace_kept(ip, capsys):
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN + "print('from the cell')\nfinal = loss",
                                   flags="")
    out = capsys.readouterr().out
    assert result.error_in_exec is None
    assert "from the cell" in out
    assert "nbdebug: 8 steps" in out
    assert re.search(r"✓ \d+ ok: 1, 2, .*\b13\b", out)      # ok items folded in one line
    assert "final" in ip.user_ns and "loss" in ip.user_ns
    assert report.run["steps"] == 8
    assert report.run["models"][0]["name"] == "net"
    assert report.run["optimizers"][0]["name"] == "opt"


def test_quiet_silences_and_last_expression_is_the_value(ip, capsys):
    run_cell(ip, SETUP)
    result, _ = diagnose_cell(ip, TRAIN + "21 * 2", flags="--quiet")
    assert result.result == 42
    assert "nbdebug:" not in capsys.readouterr().out


def test_save_writes_the_json_report(ip, tmp_path):
    run_cell(ip, SETUP)
    path = tmp_path / "sub" / "report.json"
    result, report = diagnose_cell(ip, TRAIN, flags=f"--quiet --save {path}")
    data = json.loads(path.read_text())
    assert data["schema"] == "nbdebug.report/1"
    assert [c["point"] for c in data["checklist"]][:21] == [*range(1, 21), "stuck"]
    assert data["run"]["steps"] == report.run["steps"] == 8


def test_failing_body_fails_the_cell_with_a_cell_traceback(ip, capsys):
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN + "raise ValueError('boom')", flags="")
    assert isinstance(result.error_in_exec, ValueError)
    captured = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", captured.out + captured.err)
    assert "Cell In[" in text and "boom" in text
    assert report.run["status"] == "failed" and report.run["steps"] == 8
    assert "ValueError: boom" in report.run["exception"]


def test_keyboard_interrupt_stops_and_still_reports(ip):
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN + "raise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert report.run["status"] == "interrupted" and report.run["steps"] == 8


class _Recorder:
    """A session watcher that keeps the running session, so a cell can press Stop."""

    def __init__(self):
        self.sessions = []

    def started(self, session):
        self.sessions.append(session)

    def ended(self, session):
        pass


@pytest.mark.parametrize("how", ["stop", "interrupt"])
def test_a_stop_or_an_interrupt_ends_the_cell_with_one_line(ip, capsys, how):
    from nbdebug.session import WATCHERS
    run_cell(ip, SETUP)
    recorder = _Recorder()
    WATCHERS.append(recorder)
    ip.user_ns["_watcher"] = recorder
    press = ("_watcher.sessions[-1].capture.request_stop()" if how == "stop"
             else "raise KeyboardInterrupt")
    body = TRAIN.replace("opt.step()", f"opt.step()\n    if i == 64: {press}")
    try:
        capsys.readouterr()
        result, report = diagnose_cell(ip, body, flags="")
    finally:
        WATCHERS.remove(recorder)
    out = capsys.readouterr()
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.out + out.err)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    steps = report.run["steps"]
    # Stop takes effect at the next step boundary; the interrupt at once
    assert steps == (6 if how == "stop" else 5) and report.run["status"] == ("stopped" if how == "stop"
                                                   else "interrupted")
    assert f"Training stopped at step {steps}; report above" in text
    assert text.index(f"nbdebug: {steps} steps") < text.index("Training stopped")
    assert "Traceback" not in text and "nbdebug/" not in text and "torch/" not in text
    assert "Cell In[" not in text and "capture" not in text


def test_sys_exit_in_the_cell_still_reports(ip):
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN + "import sys; sys.exit(3)")
    assert report.run["status"] == "exited" and report.run["steps"] == 8


@pytest.mark.parametrize("flags, words", [
    ("--every 0", "--every must be 1 or more"),
    ("--every abc", "--every needs a whole number"),
    ("--bogus", "unrecognized arguments"),
    ("--model nothere", "no variable named 'nothere'"),
    ("--model X", "not a model"),
    ("--optimizer net", "not a optimizer"),
    ("--loader nope", "no variable named 'nope'"),
    ("--checks nonsense", "unknown check or preset 'nonsense'"),
])
def test_bad_flags_are_one_line_usage_errors(ip, capsys, flags, words):
    from IPython.core.error import UsageError
    run_cell(ip, SETUP)
    result, _ = diagnose_cell(ip, TRAIN, flags=flags)
    assert isinstance(result.error_before_exec or result.error_in_exec, UsageError)
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) == 1


def test_empty_body_is_a_usage_error(ip, capsys):
    from IPython.core.error import UsageError
    result = ip.run_cell("%%diagnose\n\n   \n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "needs the training code" in capsys.readouterr().err


def test_cell_that_trains_nothing_gets_a_short_note(ip, capsys):
    result, report = diagnose_cell(ip, "a = 1 + 1\nprint(a)", flags="")
    assert result.error_in_exec is None
    out = capsys.readouterr().out
    assert "nothing to diagnose" in out and "not checked" not in out
    assert report.findings == []


def test_explicit_model_and_optimizer_flags(ip):
    run_cell(ip, SETUP + "other = nn.Linear(6, 2)\n")
    _, report = diagnose_cell(ip, TRAIN + "other(X)", flags="--quiet --model net --optimizer opt")
    assert [m["name"] for m in report.run["models"]] == ["net"]


def test_checks_flag_selects_checks(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, TRAIN, flags="--quiet --checks 13,stuck")
    assert report.run["checks"] == ["nan-origin", "stuck"]
    assert report.status(8) == "not_checked"


def test_line_magic_report_and_explain(ip, capsys):
    run_cell(ip, SETUP)
    diagnose_cell(ip, TRAIN)
    capsys.readouterr()
    ip.run_line_magic("nbdebug", "report")
    assert "nbdebug: 8 steps" in capsys.readouterr().out
    ip.run_line_magic("nbdebug", "explain 13")
    out = capsys.readouterr().out
    assert "Point 13" in out and "nan-origin" in out


def test_python_api_context_manager(capsys):
    import torch
    from torch import nn

    import nbdebug
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with nbdebug.diagnose(quiet=True) as session:
        for _ in range(5):
            loss = model(torch.randn(8, 4)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    report = nbdebug.last_report()
    assert report is session.report and report.run["steps"] == 5
    assert report.run["models"][0]["name"] == "model"
    assert report.losses if hasattr(report, "losses") else True
