"""Replicas that part silently across ranks, each bug with its fixed twin (two gloo ranks).

- Lost all-reduce data: the gradients are averaged by hand, but on a copy of each .grad
  whose result is never written back (a pattern of public "my ranks diverge although I
  all_reduce" reports), or with ``async_op=True`` and the work waited on only after the
  optimizer stepped. The loss still falls; only the replicas tell. Fixed twins: the
  copy written back, and the in-place all_reduce on .grad.
- Tensor-parallel gradient clipping on one rank only, or with each rank's own shard norm
  (public Megatron/DeepSpeed-style silent bugs): the replicated LayerNorm and head drift
  apart. Fixed twin: every rank clips with the norm of all the gradients.
"""

from __future__ import annotations

import pytest
from test_distributed import ROOT, loud, statuses, torchrun

pytestmark = pytest.mark.slow
TP = ROOT / "tests" / "scripts" / "tp_clip.py"


def _desync(report):
    found = [f for f in report["findings"] if f["check"] == "ddp-desync"]
    return found[0] if found else None


@pytest.mark.parametrize("how, cause", [("copy", "copies"), ("async", "async")])
def test_averaged_gradients_whose_result_is_lost_are_named_so(tmp_path, how, cause):
    _, report = torchrun(tmp_path, "--allreduce", how, "--epochs", "1")
    desync = _desync(report)
    assert desync is not None and desync["severity"] == "problem"
    assert desync["evidence"]["cause"] == cause, desync["message"]
    assert "average is lost" in desync["message"]
    assert "not being averaged" not in desync["message"]
    if how == "copy":    # every rank steps on its own gradients from the first step on
        assert desync["step"] == 0 and desync["where"] == "net.1.weight"
    else:
        assert ".wait()" in desync["fix"]


@pytest.mark.parametrize("how", ["copy-back", "grad"])
def test_the_fixed_twins_average_and_stay_silent(tmp_path, how):
    _, report = torchrun(tmp_path, "--allreduce", how, "--epochs", "1")
    assert _desync(report) is None and not loud(report), loud(report)
    assert statuses(report)["ranks"] == "ok"


@pytest.mark.parametrize("clip, cause", [("rank0", "clip-some-ranks"),
                                         ("local", "clip-norm")])
def test_tensor_parallel_clipping_that_differs_across_ranks(tmp_path, clip, cause):
    _, report = torchrun(tmp_path, "--clip", clip, script=TP)
    desync = _desync(report)
    assert desync is not None and desync["evidence"]["cause"] == cause, report["findings"]
    assert desync["step"] == 0            # the first step already clips (norm > 0.5)
    assert desync["where"] == "net.3.weight"           # the LayerNorm, replicated
    assert "one total norm" in desync["fix"]
    if clip == "rank0":
        assert "ran on rank 0 but never on rank 1" in desync["message"]
    else:
        assert "different total norm on each rank" in desync["message"]


def test_tensor_parallel_fixed_twin_clips_alike_and_compares_replicas_only(tmp_path):
    _, report = torchrun(tmp_path, "--clip", "global", script=TP)
    assert _desync(report) is None and not loud(report), loud(report)
    assert statuses(report)["ranks"] == "ok"
    replicas = report["run"]["distributed"]["replicas"]
    # the LayerNorm, the head and the row-wise layer's (replicated) bias; the column-wise
    # layer and the row-wise weight are shards
    assert replicas["compared"] == 5
    assert replicas["skipped_names"] == {
        "sharded (DTensor)": ["net.0.weight", "net.0.bias", "net.2.weight"]}
