"""Ranks a script starts itself (``mp.spawn``, ``start_processes``, ``multiprocessing``)
under ``python -m nbdebug``: real processes, two gloo ranks on CPU, one merged report."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from nbdebug.launch import Child, _users

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "ddp_spawn.py"
pytestmark = pytest.mark.slow


def run(tmp_path: pathlib.Path, *script_args: str, diagnose: bool = True,
        script: pathlib.Path = SCRIPT, flags: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    env.pop("MASTER_PORT", None)
    cmd = [sys.executable]
    if diagnose:
        cmd += ["-m", "nbdebug", "--save", str(tmp_path / "report.json"), *flags]
    return subprocess.run(cmd + [str(script), *script_args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


def merged(tmp_path: pathlib.Path, *script_args: str) -> tuple[subprocess.CompletedProcess,
                                                                dict]:
    res = run(tmp_path, *script_args)
    assert res.returncode == 0, res.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["errors"], report["errors"]
    facts = report["run"]["distributed"]
    assert facts["world_size"] == 2 and facts["ranks_reporting"] == [0, 1], facts
    assert facts["merged"] and facts["missing_ranks"] == []
    assert report["run"]["steps"] == 44          # 2 epochs of 22 batches on each rank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]   # one file
    return res, report


def trained(res: subprocess.CompletedProcess) -> list[str]:
    """Each rank's last loss and parameter checksum, printed with 17 digits."""
    return sorted(line for line in res.stdout.splitlines() if " trained " in line)


def loud(report: dict) -> list:
    return [(f["check"], f["message"]) for f in report["findings"]
            if f["severity"] in ("problem", "warning")]


@pytest.mark.parametrize("launcher, compare", [
    ("spawn", True), ("process-spawn", True), ("process-forkserver", False),
    ("start-processes-fork", False)])
def test_healthy_ranks_started_by_the_script_give_one_merged_report(tmp_path, launcher,
                                                                    compare):
    res, report = merged(tmp_path, "--launcher", launcher)
    assert not loud(report), loud(report)
    assert {c["point"]: c["status"] for c in report["checklist"]}["ranks"] == "ok"
    # rank 0's child alone prints, once; the launcher, which trained nothing, says nothing
    assert res.stderr.count("nbdebug: 44 steps") == 1, res.stderr
    assert "nothing to diagnose" not in res.stderr and "report of process" not in res.stderr
    assert len(trained(res)) == 2
    if compare:                 # diagnosing changed nothing: same numbers, bit for bit
        bare = run(tmp_path, "--launcher", launcher, diagnose=False)
        assert bare.returncode == 0, bare.stderr[-4000:]
        assert trained(res) == trained(bare)


@pytest.mark.parametrize("launcher, bug, check, point", [
    ("spawn", "--no-set-epoch", "ddp-set-epoch", 6),
    ("process-spawn", "--no-ddp", "ddp-desync", "ranks"),
    ("start-processes-fork", "--no-ddp", "ddp-desync", "ranks"),
])
def test_bugs_of_spawned_ranks_are_found(tmp_path, launcher, bug, check, point):
    _, report = merged(tmp_path, "--launcher", launcher, bug)
    assert [c for c, _ in loud(report)] == [check], loud(report)
    assert {c["point"]: c["status"] for c in report["checklist"]}[point] == "problem"


def test_a_nan_on_one_forked_rank_is_traced_to_that_rank(tmp_path):
    _, report = merged(tmp_path, "--launcher", "process-fork", "--poison-rank", "1")
    nan = next(f for f in report["findings"] if f["check"] == "nan-origin")
    assert nan["step"] == 5 and nan["evidence"]["rank"] == 1
    assert nan["where"] == "model.module.0 (UnitNorm)"


@pytest.mark.parametrize("launcher", ["spawn", "process-spawn"])
def test_a_rank_that_raises_fails_the_launcher_as_without_nbdebug(tmp_path, launcher):
    bare = run(tmp_path, "--launcher", launcher, "--fail-rank", "1", diagnose=False)
    res = run(tmp_path, "--launcher", launcher, "--fail-rank", "1")
    assert res.returncode == bare.returncode == 1
    assert "RuntimeError: planted failure on rank 1" in res.stderr
    assert "nothing to diagnose" not in res.stderr      # the ranks trained: not the launcher
    if launcher == "process-spawn":
        # the script joins every rank (mp.spawn would stop rank 0 when rank 1 fails)
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["run"]["distributed"]["ranks_reporting"] == [0, 1]
        assert res.stderr.count("nbdebug: 44 steps") == 1, res.stderr


SWEEP = '''
import multiprocessing as mp
import sys
import torch


def fit(lr):
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x.sum(1) > 0).long()
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    for _ in range(30):
        idx = torch.randint(0, 256, (32,))
        loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sys.stdout.write(f"lr {lr} trained loss {loss.item():.17g}\\n")
    sys.stdout.flush()


def idle(n):
    print("helper", sum(range(n)), flush=True)


class Fit(mp.get_context("spawn").Process):
    def run(self):
        fit(0.2)


if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    if sys.argv[1] == "idle":
        procs = [ctx.Process(target=idle, args=(10,))]
    elif sys.argv[1] == "subclass":
        procs = [Fit()]
    else:
        procs = [ctx.Process(target=fit, args=(lr,), name=f"lr{lr}") for lr in (0.05, 0.1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
'''


def test_processes_in_no_group_each_get_their_own_report(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    res = run(tmp_path, "sweep", script=script)
    assert res.returncode == 0, res.stderr[-4000:]
    for name in ("lr0.05", "lr0.1"):
        assert f"nbdebug: the report of process {name}\nnbdebug: 30 steps" in res.stderr
        report = json.loads((tmp_path / f"report-{name}.json").read_text())
        assert report["run"]["steps"] == 30 and "distributed" not in report["run"]
        assert not report["errors"] and not loud(report)
    assert not (tmp_path / "report.json").exists()        # the launcher trained nothing
    bare = run(tmp_path, "sweep", script=script, diagnose=False)
    assert trained(res) == trained(bare)
    sub = run(tmp_path, "subclass", script=script)        # a Process subclass's run()
    assert sub.returncode == 0 and "report of process Fit-1\nnbdebug: 30 steps" in sub.stderr


def test_a_helper_process_that_trains_nothing_stays_silent(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    res = run(tmp_path, "idle", script=script)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "helper 45\n"
    # the launcher speaks once for the whole run, as a script without processes would
    assert res.stderr.count("nothing to diagnose") == 1, res.stderr
    assert json.loads((tmp_path / "report.json").read_text())["notes"][0].startswith(
        "nothing to diagnose")


def square(x):
    return x * x


def test_a_child_that_cannot_be_watched_runs_unwatched_with_one_line(tmp_path, capsys):
    child = Child(square, {"every": "0"}, str(tmp_path))      # a diagnosis that cannot open
    assert child(7) == 49
    err = capsys.readouterr().err
    assert err.startswith("nbdebug: cannot watch this process (it runs unwatched): ")
    assert err.count("\n") == 1


def test_only_the_users_own_functions_are_followed():
    import multiprocessing.pool

    from torch.utils.data._utils.worker import _worker_loop
    assert _users(square)
    assert not _users(_worker_loop) and not _users(multiprocessing.pool.worker)
    assert not _users(print) and not _users(None)
