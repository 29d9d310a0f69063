"""Checks across ranks (torchrun / DDP): points 6 and 12, and the "ranks" key.

They read ``obs.extra["distributed"]``, which rank 0 fills with every rank's summary
(``nbdebug.distributed``); outside a multi-rank run they are not applicable.
"""

from __future__ import annotations

from typing import Any

from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding

#: BatchNorm statistics from fewer samples than this per rank are noisy (article point 12)
BN_MIN_BATCH = 16
#: DDP replicas are bitwise equal; any relative fingerprint difference above this is drift
DESYNC_RTOL = 1e-5
#: DataLoader passes over a DistributedSampler needed to tell "same order every epoch"
MIN_PASSES = 2


def _ranks(obs: Observations) -> list[dict[str, Any]] | None:
    dist = obs.extra.get("distributed")
    if not dist or len(dist.get("ranks", [])) < 1:
        return None
    return list(dist["ranks"])


@check("ddp-set-epoch", point=6, phase="setup")
def set_epoch_missing(obs: Observations) -> list[Finding] | str:
    """A shuffling DistributedSampler whose set_epoch is never called: same order every epoch."""
    ranks = _ranks(obs)
    if ranks is None:
        return NOT_APPLICABLE
    stale: dict[str, list[dict[str, Any]]] = {}
    seen = False
    for summary in ranks:
        for s in summary.get("samplers", []):
            if s["role"] != "train" or not s["shuffle"]:
                continue
            seen = True
            if s["passes"] >= MIN_PASSES and s["epoch"] == 0:
                stale.setdefault(s["loader"], []).append({**s, "rank": summary["rank"]})
    if not seen:
        return NOT_APPLICABLE
    out = []
    for name, items in stale.items():
        passes = max(i["passes"] for i in items)
        out.append(finding(
            severity="problem",
            title="DistributedSampler.set_epoch never called",
            message=(f"{name} uses a DistributedSampler with shuffle=True, but its epoch stayed "
                     f"0 through {passes} passes: the sampler seeds its shuffle with the "
                     "epoch, so every epoch reads the data in the same order on every rank."),
            fix=(f"Call {name}.sampler.set_epoch(epoch) at the start of each epoch, before "
                 f"iterating {name}."),
            where=name, evidence={"ranks": sorted(i["rank"] for i in items), "passes": passes,
                                  "sampler_epoch": 0}))
    return out


@check("ddp-batchnorm", point=12, phase="setup")
def batchnorm_per_rank(obs: Observations) -> list[Finding] | str:
    """BatchNorm (not SyncBatchNorm) on per-rank batches too small for good statistics."""
    ranks = _ranks(obs)
    if ranks is None:
        return NOT_APPLICABLE
    layers = sorted({t for s in ranks for t in s.get("norm_layers", [])
                     if t.startswith("BatchNorm")})
    if not layers:
        return NOT_APPLICABLE
    sizes = {s["rank"]: min(b for b in s.get("batch_sizes", []) if b)
             for s in ranks if any(s.get("batch_sizes", []))}
    if not sizes:
        return NOT_CHECKED
    smallest = min(sizes.values())
    if smallest >= BN_MIN_BATCH:
        return []
    world = obs.extra["distributed"]["world_size"]
    total = sum(sizes.values()) if len(sizes) == world else smallest * world
    fix = ("Synchronise the statistics across ranks: model = nn.SyncBatchNorm."
           "convert_sync_batchnorm(model) before wrapping it in DistributedDataParallel "
           f"(statistics then come from the global batch of {total})")
    fix += "." if total >= BN_MIN_BATCH else (
        f"; the global batch is still below {BN_MIN_BATCH}, so also raise the batch size or "
        "use GroupNorm/LayerNorm.")
    return [finding(
        severity="warning",
        title="BatchNorm on small per-rank batches",
        message=(f"Each rank normalises over its own batch of {smallest} samples "
                 f"({', '.join(layers)}): below about {BN_MIN_BATCH} the batch mean and "
                 "variance are noisy, and plain BatchNorm does not share them across ranks."),
        fix=fix, where=None,
        evidence={"per_rank_batch": sizes, "world_size": world, "global_batch": total,
                  "layers": layers})]


def drift(steps: list[dict[Any, Any]]) -> dict[str, Any] | None:
    """The first step at which some rank's parameters differ from rank 0's, or None.

    ``steps`` holds, per step, rank -> {"step", "fingerprint": [[sum, norm], ...]}.
    """
    for by_rank in steps:
        by_rank = {int(r): rec for r, rec in by_rank.items()}
        ref = by_rank.get(0, {}).get("fingerprint")
        if not ref:
            continue
        worst = None
        for rank, rec in sorted(by_rank.items()):
            fp = rec.get("fingerprint")
            if rank == 0 or not fp or len(fp) != len(ref):
                continue
            for i, ((s0, n0), (s1, n1)) in enumerate(zip(ref, fp)):
                rel = max(abs(s0 - s1), abs(n0 - n1)) / (abs(n0) + abs(n1) + 1e-12)
                if rel > DESYNC_RTOL and (worst is None or rel > worst["relative_difference"]):
                    worst = {"step": rec["step"], "rank": rank, "param_index": i,
                             "relative_difference": rel}
        if worst is not None:
            return worst
    return None


def _by_step(ranks: list[dict[str, Any]]) -> list[dict[int, dict[str, Any]]]:
    table: dict[int, dict[int, dict[str, Any]]] = {}
    for s in ranks:
        for rec in s.get("records", []):
            table.setdefault(rec["step"], {})[s["rank"]] = rec
    return [table[k] for k in sorted(table) if len(table[k]) == len(ranks)]


@check("ddp-desync", point="ranks", phase="timeline", title="Ranks stay in step")
def desync(obs: Observations) -> list[Finding] | str:
    """Parameters that differ across ranks at the same step: the replicas drifted apart."""
    ranks = _ranks(obs)
    if ranks is None:
        return NOT_APPLICABLE
    if len(ranks) < 2:
        return NOT_CHECKED
    common = _by_step(ranks)
    if not common:
        return NOT_CHECKED
    found = drift(common)
    if found is None:
        return []
    names = ranks[0].get("param_names") or []
    i = found["param_index"]
    name = names[i] if i < len(names) else f"parameter #{i}"
    return [finding(
        severity="problem",
        title="Model replicas drifted apart across ranks",
        message=(f"At step {found['step']} the parameters of rank {found['rank']} differ from "
                 f"rank 0's (largest in {name}, relative difference "
                 f"{found['relative_difference']:.3g}): the ranks are training different "
                 "models, so their gradients are not being averaged."),
        fix=("Wrap the model in torch.nn.parallel.DistributedDataParallel after moving it to "
             "its device and before creating the optimizer; do not change parameters or "
             "buffers on one rank only, and seed the model the same on every rank."),
        where=name, step=found["step"],
        evidence={**found, "compared_steps": [min(r[0]["step"] for r in common[:1]),
                                              max(r[0]["step"] for r in common)]})]


@check("ddp-uneven", point="ranks", phase="end", title="Ranks stay in step")
def uneven(obs: Observations) -> list[Finding] | str:
    """Ranks that drew different numbers of batches or took different numbers of steps."""
    ranks = _ranks(obs)
    if ranks is None:
        return NOT_APPLICABLE
    if len(ranks) < 2:
        return NOT_CHECKED
    steps = {s["rank"]: s["steps"] for s in ranks}
    batches = {s["rank"]: s["batches"] for s in ranks}
    if len(set(steps.values())) == 1 and len(set(batches.values())) == 1:
        return []
    lo = min(batches, key=lambda r: batches[r])
    hi = max(batches, key=lambda r: batches[r])
    if batches[lo] == batches[hi]:
        lo = min(steps, key=lambda r: steps[r])
        hi = max(steps, key=lambda r: steps[r])
    return [finding(
        severity="warning",
        title="Ranks ran uneven numbers of batches",
        message=(f"Rank {hi} drew {batches[hi]} training batches ({steps[hi]} steps), rank "
                 f"{lo} only {batches[lo]} ({steps[lo]} steps): under DDP the ranks with more "
                 "batches wait in all-reduce for ranks that are done (a hang), or under Join "
                 "train the last steps on fewer replicas."),
        fix=("Give every rank the same number of batches: a DistributedSampler (it pads the "
             "shards to equal length), drop_last=True, or wrap the loop in "
             "torch.distributed.algorithms.Join([model])."),
        where=None, evidence={"batches_by_rank": batches, "steps_by_rank": steps})]
