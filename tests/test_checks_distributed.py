"""The distributed checks and the merge on hand-made rank summaries (no processes)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from nbdebug.checks import REGISTRY, run_checks
from nbdebug.checks.distributed import BN_MIN_BATCH
from nbdebug.checks.replicas import encode_rows
from nbdebug.merge import merge_findings, merge_observations
from nbdebug.observations import NanEvent, Observations
from nbdebug.report import Finding

NAMES = ["net.0.weight", "net.0.bias"]


def window(rows, first=38, group="all ranks"):
    """A window record and its row payload, as a rank publishes them: ``rows`` holds the
    norms of NAMES at the start of steps first, first + 1, ..."""
    import numpy as np

    from nbdebug.capture.probes.replicas import Window
    w = Window(list(range(first, first + len(rows))), np.array(rows, dtype=float), NAMES,
               [group] * len(NAMES))
    return ({"step": first + len(rows), "steps": w.steps, "digests": w.digests()},
            encode_rows(w.steps, w.rows, NAMES, w.keys))


SAME = [[3.0, 0.5], [3.0, 0.25], [3.5, 0.25]]


def rank(r: int, rows=SAME, first=38, **kw) -> dict:
    record, tail = window(rows, first)
    base = {"rank": r, "steps": 40, "epochs": 2, "batches": 40, "batch_sizes": [32],
            "samplers": [{"loader": "train_dl", "role": "train", "passes": 2, "shuffle": True,
                          "epoch": 1, "num_replicas": 2}],
            "norm_layers": [], "nan": None, "records": [record], "tail": tail,
            "sync": {"ddp": True}, "findings": [], "outcomes": {}}
    base.update(kw)
    return base


def obs_of(*ranks: dict) -> Observations:
    obs = Observations(steps=40, backward_calls=40)
    obs.extra["distributed"] = {"world_size": len(ranks), "ranks": list(ranks), "missing": []}
    return obs


def run(check_id: str, obs: Observations):
    return REGISTRY[check_id].run(obs)


DIST_CHECKS = ["ddp-set-epoch", "ddp-batchnorm", "ddp-desync", "ddp-uneven"]


def test_healthy_ranks_give_no_finding():
    obs = obs_of(rank(0), rank(1))
    for cid in DIST_CHECKS:
        assert run(cid, obs) in ([], "not_applicable"), cid


@pytest.mark.parametrize("cid", DIST_CHECKS)
def test_not_applicable_outside_a_multi_rank_run(cid):
    assert run(cid, Observations(steps=5, backward_calls=5)) == "not_applicable"


def test_set_epoch_never_called():
    stale = [{"loader": "train_dl", "role": "train", "passes": 3, "shuffle": True, "epoch": 0,
              "num_replicas": 2}]
    [f] = run("ddp-set-epoch", obs_of(rank(0, samplers=stale), rank(1, samplers=stale)))
    assert f.point == 6 and f.severity == "problem" and f.where == "train_dl"
    assert f.evidence["ranks"] == [0, 1] and "set_epoch(epoch)" in f.fix
    one_pass = [dict(stale[0], passes=1)]
    assert run("ddp-set-epoch", obs_of(rank(0, samplers=one_pass))) == []
    no_shuffle = [dict(stale[0], shuffle=False)]
    assert run("ddp-set-epoch", obs_of(rank(0, samplers=no_shuffle))) == "not_applicable"


def test_batchnorm_on_small_per_rank_batches():
    small = {"norm_layers": ["BatchNorm2d"], "batch_sizes": [8]}
    [f] = run("ddp-batchnorm", obs_of(rank(0, **small), rank(1, **small)))
    assert f.point == 12 and f.severity == "warning" and "SyncBatchNorm" in f.fix
    assert f.evidence["global_batch"] == 16 and "raise the batch size" not in f.fix
    tiny = {"norm_layers": ["BatchNorm2d"], "batch_sizes": [4]}
    [f] = run("ddp-batchnorm", obs_of(rank(0, **tiny), rank(1, **tiny)))
    assert "raise the batch size" in f.fix
    big = {"norm_layers": ["BatchNorm2d"], "batch_sizes": [BN_MIN_BATCH]}
    assert run("ddp-batchnorm", obs_of(rank(0, **big), rank(1, **big))) == []
    sync = {"norm_layers": ["SyncBatchNorm"], "batch_sizes": [4]}
    assert run("ddp-batchnorm", obs_of(rank(0, **sync))) == "not_applicable"


def test_desync_names_the_step_and_the_parameter_exactly():
    # equal at the start of steps 38 and 39, rank 1's bias differs at the start of 40
    drifted = [[3.0, 0.5], [3.0, 0.25], [3.5, 0.25 * (1 + 1e-12)]]
    [f] = run("ddp-desync", obs_of(rank(0), rank(1, rows=drifted)))
    assert f.point == "ranks" and f.severity == "problem"
    assert f.step == 39 and f.where == "net.0.bias" and f.evidence["rank"] == 1
    assert f.evidence["first_unequal_step_start"] == 40
    assert f.evidence["last_equal_step_start"] == 39
    assert [p["name"] for p in f.evidence["parameters"]] == ["net.0.bias"]
    assert f.evidence["cause"] == "lost" and "by DDP" in f.message
    assert f.evidence["compared_steps"] == [38, 40, 3]
    assert run("ddp-desync", obs_of(rank(0), rank(1))) == []        # bitwise equal
    assert run("ddp-desync", obs_of(rank(0))) == "not_checked"


def test_desync_only_within_a_replica_group():
    """Shards of a DTensor (one group per coordinate) are compared with their own
    replicas only: ranks 0, 1 hold one shard, ranks 2, 3 another."""
    a, b = [[1.0, 2.0]] * 3, [[5.0, 6.0]] * 3
    ranks = [rank(r, rows=rows, records=[window(rows, group=g)[0]], tail=None)
             for r, rows, g in [(0, a, "mesh at 1:0"), (1, a, "mesh at 1:0"),
                                (2, b, "mesh at 1:1"), (3, b, "mesh at 1:1")]]
    assert run("ddp-desync", obs_of(*ranks)) == []
    c = [[5.0, 6.0], [5.0, 6.5], [5.0, 6.5]]
    ranks[3] = rank(3, rows=c, records=[window(c, group="mesh at 1:1")[0]], tail=None)
    [f] = run("ddp-desync", obs_of(*ranks))
    assert (f.evidence["rank"], f.evidence["reference_rank"], f.step) == (3, 2, 38)


@pytest.mark.parametrize("sync, clip, cause", [
    ({}, {}, "not-averaged"),
    ({"all_reduce": 8}, {}, "copies"),
    ({"all_reduce": 8, "on_grads": 8, "async": 8}, {}, "async"),
    ({"all_reduce": 8, "on_grads": 8}, {}, "lost"),
    ({"ddp": True}, {0: {"calls": 3}, 1: {"calls": 0}}, "clip-some-ranks"),
    ({"dtensor": True}, {0: {"calls": 3, "norms": {"0": 2.5}},
                         1: {"calls": 3, "norms": {"0": 2.75}}}, "clip-norm"),
    ({"fsdp": True, "reduce_scatter": 8}, {}, "outside-fsdp"),
])
def test_desync_says_why(sync, clip, cause):
    """Lost all-reduce data is told apart from no averaging at all."""
    drifted = [[3.0, 0.5], [3.0, 0.3], [3.5, 0.3]]
    ranks = [rank(r, rows=rows, sync=sync, clip=clip.get(r, {}))
             for r, rows in ((0, SAME), (1, drifted))]
    [f] = run("ddp-desync", obs_of(*ranks))
    assert f.evidence["cause"] == cause and f.step == 38, f.message
    if cause in ("copies", "async"):
        assert "average is lost" in f.message
    if cause == "not-averaged":
        assert "not being averaged" in f.message and "DistributedDataParallel" in f.fix


def test_replicas_that_differ_before_any_update_were_built_apart():
    ranks = rank(0, first=0), rank(1, rows=[[3.1, 0.5]] * 3, first=0, sync={})
    [f] = run("ddp-desync", obs_of(*ranks))
    assert f.step == 0 and f.evidence["cause"] == "start" and "seed" in f.fix


def test_uneven_batches():
    [f] = run("ddp-uneven", obs_of(rank(0), rank(1, batches=30, steps=30)))
    assert f.severity == "warning" and f.point == "ranks"
    assert f.evidence["batches_by_rank"] == {0: 40, 1: 30} and "Join" in f.fix


def test_merge_names_the_rank_of_the_first_nan():
    r0 = rank(0, nan=asdict(NanEvent(6, "backward", "net.0.weight")))
    r1 = rank(1, nan=asdict(NanEvent(6, "forward", "net.1 (Linear)")))
    r2 = rank(2, nan=asdict(NanEvent(7, "input", None)))
    obs = obs_of(r0, r1, r2)
    merge_observations(obs, [r0, r1, r2], 3, [])
    assert obs.nan.detail["rank"] == 1 and obs.nan.where == "net.1 (Linear)"
    [f] = run("nan-origin", obs)
    assert "step 6 on rank 1 in the output of net.1 (Linear)" in f.message
    assert f.evidence["first_nan_step_by_rank"] == {0: 6, 1: 6, 2: 7}


def test_merge_findings_from_other_ranks():
    sgd = Finding("sgd-momentum", 8, "warning", "Vanilla SGD", "m", "f", where="opt")
    zero = Finding("zero-init", 17, "problem", "Weights constant", "w0 is zero", "f",
                   where="net.0.weight")
    nan = Finding("nan-origin", 13, "problem", "NaN", "m", "f")
    obs = obs_of(rank(0), rank(1))
    local = run_checks(Observations(), ["sgd-momentum", "zero-init", "nan-origin"])
    local.findings.append(Finding(**asdict(sgd)))
    local.outcomes["sgd-momentum"] = "warning"
    summaries = [rank(0), rank(1, findings=[asdict(sgd), asdict(zero), asdict(nan)])]
    merged = merge_findings(local, summaries)
    by = {f.check: f for f in merged.findings}
    assert by["sgd-momentum"].evidence["ranks"] == [0, 1]
    assert by["zero-init"].message == "On rank 1: w0 is zero"
    assert merged.outcomes["zero-init"] == "problem"
    assert "nan-origin" not in by                  # rank 0 recomputes it from merged data
    assert [f.severity for f in merged.findings] == ["problem", "warning"]
    assert obs.extra["distributed"]["world_size"] == 2


def test_live_merge_at_flush_points_is_bounded_and_finds_the_first_drift():
    """Rank 0's side of the flush-point merge, on a real torch store; rank 1 is late."""
    import json

    from torch.distributed import HashStore

    from nbdebug.distributed import LIVE_STEPS, take_live
    store = HashStore()

    def fetch(rank, step):
        key = f"run/flush/{rank}/{step // 50 % LIVE_STEPS}"
        rec = json.loads(store.get(key)) if store.check([key]) else None
        return rec if rec is not None and rec["step"] == step else None
    equal, drifted = [[1.5, 3.0]] * 50, [[1.5, 3.0]] * 10 + [[1.5, 3.5]] * 40
    live: dict = {}
    found = []
    for step in range(50, 1050, 50):                          # 20 flush points
        live.setdefault(step, {})[0] = window(equal, first=step - 50)[0]
        late = step - 100                                     # rank 1 is two flushes behind,
        if 0 < late <= 600 and late != 200:                   # skips 200, stops after 600
            rows = drifted if late >= 400 else equal
            store.set(f"run/flush/1/{late // 50 % LIVE_STEPS}",
                      json.dumps(window(rows, first=late - 50)[0]))
        d = take_live(live, 2, fetch)
        if d:
            found.append(d)
        assert len(live) <= LIVE_STEPS
    assert found[0]["row_step"] == 360 and found[0]["rank"] == 1
    assert found[0]["flush"] == 400 and found[0]["last_equal"] == 359
    assert sorted(live) == list(range(650, 1050, 50))        # the newest 8 still wait;
    assert 200 not in live                                    # older ones are given up


def test_a_rank_without_process_group_reports_alone_and_restores_everything(monkeypatch):
    """WORLD_SIZE says 2 but the code never calls init_process_group."""
    import torch
    import torch.distributed as dist
    from torch.distributed import distributed_c10d as c10d

    import nbdebug
    originals = (dist.destroy_process_group, c10d.destroy_process_group)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    with nbdebug.diagnose(quiet=True) as session:
        assert session.merger is not None
        assert dist.destroy_process_group is not originals[0]
        for _ in range(3):
            opt.zero_grad()
            net(torch.randn(4, 3)).pow(2).mean().backward()
            opt.step()
    assert (dist.destroy_process_group, c10d.destroy_process_group) == originals
    report = nbdebug.last_report()
    assert report.run["steps"] == 3 and not report.errors
    assert report.run["distributed"]["merged"] is False
    assert any("report covers rank 0 only" in n for n in report.notes), report.notes
    assert report.status("ranks") == "not_applicable"
