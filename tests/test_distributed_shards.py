"""Sharded runs on two gloo ranks (CPU): only what is meant to be equal is compared.

FSDP's shards and tensor-parallel shards differ from rank to rank by design: a healthy
sharded run gets no ``ddp-desync``; the replicated parameters beside them (a LayerNorm of
a tensor-parallel block, a parameter left outside every FSDP unit) are still compared.
"""

from __future__ import annotations

import pytest
from test_distributed import loud, statuses, torchrun

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("how", ["fsdp1", "fsdp2"])
def test_healthy_fsdp_is_not_a_desync(tmp_path, how):
    _, report = torchrun(tmp_path, "--shard", how, "--epochs", "1")
    assert not loud(report), loud(report)
    assert statuses(report)["ranks"] != "problem"
    replicas = report["run"]["distributed"]["replicas"]
    assert replicas["compared"] == 0 and list(replicas["skipped"]) == ["FSDP shard"]
    assert any("not compared, as not replicated" in n for n in report["notes"])


def test_a_parameter_outside_every_fsdp_unit_drifts_and_is_named(tmp_path):
    """fully_shard on the Linear layers only: the root's own scale is never averaged."""
    _, report = torchrun(tmp_path, "--shard", "fsdp2-layers", "--epochs", "1")
    [desync] = [f for f in report["findings"] if f["check"] == "ddp-desync"]
    assert desync["where"] == "net.scale" and desync["evidence"]["cause"] == "outside-fsdp"
    assert "fully_shard" in desync["fix"]
    assert report["run"]["distributed"]["replicas"]["compared"] == 1

# the healthy tensor-parallel run is the fixed twin in tests/silent/test_ranks.py
