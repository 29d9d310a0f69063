"""torchrun / DDP: two real gloo ranks on CPU, one merged report from rank 0."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "scripts" / "ddp_digits.py"
pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1", **extra)


def torchrun(tmp_path: pathlib.Path, *script_args: str, diagnose: bool = True,
             script: pathlib.Path = SCRIPT) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2"]
    cmd += ["-m", "nbdebug", "--save", str(out), str(script)] if diagnose else [str(script)]
    res = subprocess.run(cmd + list(script_args), cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    if not diagnose:
        return res, {}
    report = json.loads(out.read_text())
    assert not report["errors"], report["errors"]
    return res, report


def trained_line(res: subprocess.CompletedProcess) -> str:
    return next(line for line in res.stdout.splitlines() if line.startswith("trained"))


def statuses(report: dict) -> dict:
    return {str(c["point"]): c["status"] for c in report["checklist"]}


def loud(report: dict) -> list:
    return [(f["check"], f["message"]) for f in report["findings"]
            if f["severity"] in ("problem", "warning")]


def test_healthy_ddp_gives_one_merged_report_without_warnings(tmp_path):
    res, report = torchrun(tmp_path)
    assert not loud(report), loud(report)
    facts = report["run"]["distributed"]
    assert facts["world_size"] == 2 and facts["ranks_reporting"] == [0, 1]
    assert facts["missing_ranks"] == [] and facts["flushes"] == 1   # 66 steps: one at 50
    assert report["run"]["steps"] == 66
    st = statuses(report)
    assert st["ranks"] == "ok" and st["6"] == "ok" and st["13"] == "ok"
    assert st["12"] == "not_applicable"
    # rank 0 alone prints, once
    assert res.stderr.count("nbdebug: 66 steps") == 1, res.stderr
    # and diagnosing changed nothing: same last loss and parameters, bit for bit
    plain, _ = torchrun(tmp_path, diagnose=False)
    assert trained_line(res) == trained_line(plain)


def test_missing_set_epoch_and_a_nan_on_rank_1_are_named(tmp_path):
    _, report = torchrun(tmp_path, "--no-set-epoch", "--poison-rank", "1")
    st = statuses(report)
    assert st["6"] == "problem" and st["13"] == "problem"
    epoch = next(f for f in report["findings"] if f["check"] == "ddp-set-epoch")
    assert epoch["point"] == 6 and epoch["where"] == "loader"
    assert epoch["evidence"]["ranks"] == [0, 1] and epoch["evidence"]["passes"] == 3
    nan = next(f for f in report["findings"] if f["check"] == "nan-origin")
    assert nan["point"] == 13 and nan["step"] == 5
    assert nan["evidence"]["rank"] == 1 and nan["evidence"]["phase"] == "forward"
    assert nan["where"] == "model.module.0 (UnitNorm)"
    assert "step 5 on rank 1 in the output of model.module.0 (UnitNorm)" in nan["message"]
    assert st["ranks"] == "ok"              # DDP kept the replicas equal (NaN on both)


def test_unsynchronised_ranks_uneven_batches_and_small_batchnorm(tmp_path):
    # without destroy_process_group the ranks merge when the script ends
    _, report = torchrun(tmp_path, "--no-ddp", "--uneven", "--batchnorm", "8", "--epochs", "1",
                         "--no-destroy")
    assert report["run"]["distributed"]["ranks_reporting"] == [0, 1]
    st = statuses(report)
    assert st["ranks"] == "problem" and st["12"] == "warning"
    desync = next(f for f in report["findings"] if f["check"] == "ddp-desync")
    # each rank seeded by its rank: apart before the first update, and nothing averages
    assert desync["evidence"]["rank"] == 1 and desync["step"] == 0
    assert desync["evidence"]["first_unequal_step_start"] == 0
    assert desync["evidence"]["cause"] == "start" and "seed" in desync["fix"]
    uneven = next(f for f in report["findings"] if f["check"] == "ddp-uneven")
    assert uneven["evidence"]["batches_by_rank"] == {"0": 88, "1": 63}
    bn = next(f for f in report["findings"] if f["check"] == "ddp-batchnorm")
    assert bn["evidence"]["per_rank_batch"] == {"0": 8, "1": 8}
    assert "SyncBatchNorm" in bn["fix"]


@pytest.mark.parametrize("at", [37, 60])
def test_replicas_that_part_are_found_at_the_step_they_part(tmp_path, at):
    """Rank 1 alone edits a weight after step ``at``'s update (DDP averages the gradients,
    so nothing else tells the replicas apart): found at that step, exactly, and the weight
    named; 37 is compared at the flush of step 50, 60 only at the end (66 steps)."""
    _, report = torchrun(tmp_path, "--desync-at", str(at))
    [desync] = [f for f in report["findings"] if f["check"] == "ddp-desync"]
    assert desync["severity"] == "problem" and desync["step"] == at
    assert desync["where"] == "model.module.3.bias" and desync["evidence"]["differing"] == 1
    assert desync["evidence"]["last_equal_step_start"] == at
    assert desync["evidence"]["cause"] == "lost" and "by DDP" in desync["message"]
    assert statuses(report)["ranks"] == "problem"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_that_dies_does_not_hang_rank_0(tmp_path):
    """Rank 1 stops dead before the end: rank 0 waits its timeout, then reports alone."""
    out = tmp_path / "report.json"
    port = str(_free_port())
    procs = []
    t0 = time.monotonic()
    for rank in (0, 1):
        env = _env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK=str(rank),
                   LOCAL_RANK=str(rank), WORLD_SIZE="2", NBDEBUG_DIST_TIMEOUT="3")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "nbdebug", "--save", str(out), str(SCRIPT), "--epochs", "1",
             "--rank1-dies"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=180) for p in procs]
    assert procs[0].returncode == 0, outputs[0][1][-3000:]
    assert time.monotonic() - t0 < 120
    report = json.loads(out.read_text())
    facts = report["run"]["distributed"]
    assert facts["missing_ranks"] == [1] and facts["ranks_reporting"] == [0]
    assert any("rank(s) 1 sent no summary" in n for n in report["notes"]), report["notes"]
    assert statuses(report)["ranks"] == "not_checked"
    assert not loud(report), loud(report)
