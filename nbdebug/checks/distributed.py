"""Checks across ranks (torchrun / DDP): points 6 and 12, and the "ranks" key.

They read ``obs.extra["distributed"]``, which rank 0 fills with every rank's summary
(``nbdebug.distributed``); outside a multi-rank run they are not applicable.
"""

from __future__ import annotations

from typing import Any

from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding
from .replicas import MAX_LISTED, cause, compared_steps, differing, first_divergence

#: BatchNorm statistics from fewer samples than this per rank are noisy (article point 12)
BN_MIN_BATCH = 16
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


def _live_drift(obs: Observations) -> dict[str, Any] | None:
    return (obs.extra.get("ranks_live") or {}).get("drift")


def _tails(ranks: list[dict[str, Any]]) -> dict[int, Any]:
    return {s["rank"]: s["tail"] for s in ranks if s.get("tail")}


@check("ddp-desync", point="ranks", phase="timeline", title="Ranks stay in step")
def desync(obs: Observations) -> list[Finding] | str:
    """Replicated parameters that differ across ranks: the replicas drifted apart.

    Every rank checksums the parameters meant to be equal (``capture.probes.replicas``) at
    the start of every step; the first step whose checksums differ between two ranks of a
    replica group is where they drifted, exactly (no tolerance)."""
    ranks = _ranks(obs)
    if ranks is None:
        return NOT_APPLICABLE
    if len(ranks) < 2:
        return NOT_CHECKED
    by_rank = {s["rank"]: s.get("records", []) for s in ranks}
    found = first_divergence(by_rank)
    live = _live_drift(obs)
    if live is not None and (found is None or live["row_step"] <= found["row_step"]):
        found = live
    compared = compared_steps(by_rank)
    if found is None:
        return [] if compared else NOT_CHECKED
    k = found["row_step"]
    params = found.get("params")
    if params is None:
        tails = _tails(ranks)
        if found["reference"] in tails and found["rank"] in tails:
            params = differing(tails[found["reference"]], tails[found["rank"]], k,
                               found["group"])
    where = params[0]["name"] if params else None
    kind, why, fix = cause(ranks, found)
    r, ref, last = found["rank"], found["reference"], found.get("last_equal")
    step = max(k - 1, 0)
    if k == 0:
        when = f"At the first step, rank {r}'s parameters already differ from rank {ref}'s"
    elif last == k - 1:
        when = (f"In step {step} the replicas drifted apart: at its start rank {r}'s "
                f"parameters equalled rank {ref}'s, at the start of step {k} they differ")
    else:
        since = f"step {last}" if last is not None else "the first step compared"
        when = (f"Rank {r}'s parameters drifted from rank {ref}'s between the start of "
                f"{since} and the start of step {k}")
    what = ""
    if params:
        first = params[0]
        others = len(params) - 1
        what = (f" (first {first['name']}, relative difference "
                f"{first['relative_difference']:.3g}"
                + (f", and {others} other parameter{'s' * (others != 1)}" if others else "")
                + ")")
    return [finding(
        severity="problem",
        title="Model replicas drifted apart across ranks",
        message=f"{when}{what}: {why}.",
        fix=fix, where=where, step=step,
        evidence={"rank": r, "reference_rank": ref, "group": found["group"],
                  "first_unequal_step_start": k, "last_equal_step_start": last,
                  "cause": kind, "parameters": (params or [])[:MAX_LISTED],
                  "differing": len(params) if params is not None else None,
                  "relative_difference": params[0]["relative_difference"] if params else None,
                  "compared_steps": compared,
                  "replicas": ranks[0].get("replicas")})]


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
