"""``python -m nbdebug script.py``: a real interpreter running real scripts."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "sorted_sgd.py"


def nbdebug(*args: str, cwd: pathlib.Path | None = None, command: list[str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    cmd = (command or [sys.executable, "-m", "nbdebug"]) + list(args)
    return subprocess.run(cmd, cwd=cwd or ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def load(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def statuses(report: dict) -> dict:
    return {str(c["point"]): c["status"] for c in report["checklist"]}


def test_script_runs_as_main_with_its_argv_and_gets_the_report(tmp_path):
    out = tmp_path / "report.json"
    res = nbdebug("--save", str(out), "--every", "5", str(SCRIPT), "--epochs", "2")
    assert res.returncode == 0, res.stderr
    assert f"argv {[str(SCRIPT), '--epochs', '2']!r}" in res.stdout
    assert "name __main__" in res.stdout and "pickled Config" in res.stdout
    assert res.stdout.rstrip().endswith("finished")     # the report is not on stdout
    report = load(out)
    assert report["schema"] == "nbdebug.report/1"
    assert report["run"]["status"] == "done" and report["run"]["every"] == 5
    assert report["run"]["steps"] == 30 and report["run"]["epochs"] == 2
    assert [m["name"] for m in report["run"]["models"]] == ["clf"]
    # plain SGD is advice (info, item ok) while the run shows no stall
    assert statuses(report)["6"] == "problem" and statuses(report)["8"] == "ok"
    text = res.stderr
    assert text.startswith("nbdebug: 30 steps, 2 epochs"), text
    assert "Training data not shuffled" in text and "Vanilla SGD" in text


def test_uncaught_exception_exits_1_with_the_scripts_traceback_then_the_report(tmp_path):
    out = tmp_path / "r.json"
    res = nbdebug("--save", str(out), str(SCRIPT), "--epochs", "1", "--fail")
    assert res.returncode == 1
    err = res.stderr
    assert err.startswith("Traceback (most recent call last):"), err
    assert f'File "{SCRIPT}", line' in err
    assert "ValueError: planted failure after training" in err
    assert "cli.py" not in err and "session.py" not in err     # no nbdebug frames
    assert err.index("ValueError: planted") < err.index("nbdebug: 15 steps")
    report = load(out)
    assert report["run"]["status"] == "failed"
    assert report["run"]["exception"] == "ValueError: planted failure after training"
    assert statuses(report)["6"] == "problem"


@pytest.mark.parametrize("code, status, message", [("3", 3, None),
                                                   ("stopped early", 1, "stopped early")])
def test_sys_exit_keeps_its_status(tmp_path, code, status, message):
    out = tmp_path / "r.json"
    res = nbdebug("--quiet", "--save", str(out), str(SCRIPT), "--epochs", "1", "--exit", code)
    assert res.returncode == status, res.stderr
    assert "finished" not in res.stdout
    assert "nbdebug:" not in res.stderr                  # --quiet
    if message:
        assert res.stderr.strip() == message
    assert load(out)["run"]["status"] == "exited"


def test_module_mode_runs_a_module_as_main(tmp_path):
    pkg = tmp_path / "trainpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import sys\nfrom . import helper\nprint('argv', sys.argv[1:], __name__, "
        "helper.VALUE)\nhelper.train(int(sys.argv[1]))\n")
    (pkg / "helper.py").write_text(
        "import torch\nVALUE = 42\n"
        "def train(steps):\n"
        "    net = torch.nn.Linear(3, 2)\n"
        "    opt = torch.optim.Adam(net.parameters())\n"
        "    for _ in range(steps):\n"
        "        opt.zero_grad()\n"
        "        net(torch.randn(8, 3)).pow(2).mean().backward()\n"
        "        opt.step()\n")
    out = tmp_path / "r.json"
    res = nbdebug("--save", str(out), "-m", "trainpkg", "7", "--flag", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "argv ['7', '--flag'] __main__ 42" in res.stdout
    assert load(out)["run"]["steps"] == 7


@pytest.mark.parametrize("args, message", [
    ([], "give the script to run"),
    (["--every", "0", str(SCRIPT)], "--every must be 1 or more"),
    (["--checks", "nosuch", str(SCRIPT)], "unknown check or preset 'nosuch'"),
    (["missing_script.py"], "cannot run missing_script.py"),
])
def test_usage_errors_exit_2_with_one_line(args, message):
    res = nbdebug(*args)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_console_command():
    exe = pathlib.Path(sys.executable).with_name("nbdebug")
    if not exe.exists():
        pytest.skip("the nbdebug command is not installed in this environment (pip install -e .)")
    res = nbdebug("--quiet", str(SCRIPT), "--epochs", "1", "--exit", "4", command=[str(exe)])
    assert res.returncode == 4, res.stderr
