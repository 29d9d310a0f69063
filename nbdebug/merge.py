"""What one rank tells rank 0 at the end, and how rank 0 merges it: plain functions.

``samplers`` reads a rank's live capture (at the end, never inside a step);
``merge_observations`` and ``merge_findings`` work on the summaries only, so they are
tested with hand-made ones.
"""

from __future__ import annotations

from typing import Any

from .checks.registry import CheckRun
from .observations import NanEvent, Observations
from .report import Finding

#: checks rank 0 recomputes from the merged data: other ranks' findings of these are dropped
MERGED_CHECKS = ("nan-origin", "ddp-set-epoch", "ddp-batchnorm", "ddp-desync", "ddp-uneven")
_PHASE_ORDER = {"input": 0, "forward": 1, "loss": 2, "backward": 3}


def samplers(capture: Any) -> list[dict[str, Any]]:
    """DistributedSamplers of the loaders seen: shuffle, epoch value, passes."""
    from torch.utils.data.distributed import DistributedSampler
    out = []
    for ref, info in list(capture.loaders.values()):
        loader = ref()
        sampler = getattr(loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            out.append({"loader": info.name, "role": info.role, "passes": info.epochs,
                        "shuffle": bool(sampler.shuffle), "epoch": int(sampler.epoch),
                        "num_replicas": int(sampler.num_replicas)})
    return out


def merge_observations(obs: Observations, summaries: list[dict[str, Any]], world: int,
                        missing: list[int]) -> None:
    obs.extra["distributed"] = {"world_size": world, "ranks": summaries, "missing": missing}
    if missing:
        obs.notes.append(f"rank(s) {', '.join(map(str, missing))} sent no summary in time "
                         "(still running, or stopped): the report covers the others")
    _note_replicas(obs, summaries)
    first = None
    seen = {}
    for s in summaries:
        ev = s.get("nan")
        if ev is None:
            continue
        seen[s["rank"]] = ev["step"]
        key = (ev["step"], _PHASE_ORDER.get(ev["phase"], 9), s["rank"])
        if first is None or key < first[0]:
            first = (key, s["rank"], ev)
    if first is not None:
        _, rank, ev = first
        detail = dict(ev.get("detail") or {}, rank=rank)
        if len(seen) > 1:
            detail["first_nan_step_by_rank"] = seen
        obs.nan = NanEvent(step=ev["step"], phase=ev["phase"], where=ev["where"],
                           kind=ev.get("kind", "nan"), detail=detail)


def _note_replicas(obs: Observations, summaries: list[dict[str, Any]]) -> None:
    """Say which parameters were compared across ranks, and which were left out."""
    facts = summaries[0].get("replicas") if summaries else None
    if not facts or not facts.get("skipped"):
        return
    skipped = "; ".join(f"{n} {why} ({', '.join(facts['skipped_names'][why][:3])}"
                        f"{', ...' if n > 3 else ''})" for why, n in facts["skipped"].items())
    obs.notes.append(f"ranks: {facts['compared']} parameters compared across ranks at every "
                     f"step; not compared, as not replicated: {skipped}")


_SEVERITY = {"problem": 3, "warning": 2, "info": 1}


def merge_findings(run: CheckRun, summaries: list[dict[str, Any]]) -> CheckRun:
    """Rank 0's findings plus the other ranks' own; each says which ranks saw it."""
    findings = list(run.findings)
    outcomes = dict(run.outcomes)
    index: dict[tuple[Any, ...], Finding] = {}
    for f in findings:
        if f.check not in MERGED_CHECKS:
            f.evidence["ranks"] = [0]
            index[(f.check, f.where, f.title)] = f
    for s in summaries[1:]:
        rank = s["rank"]
        for data in s.get("findings", []):
            if data["check"] in MERGED_CHECKS or data["check"] not in outcomes:
                continue
            key = (data["check"], data["where"], data["title"])
            if key in index:
                index[key].evidence.setdefault("ranks", []).append(rank)
                continue
            f = Finding(**data)
            f.message = f"On rank {rank}: {f.message}"
            f.evidence["ranks"] = [rank]
            findings.append(f)
            index[key] = f
            if f.severity in ("problem", "warning") and _SEVERITY[f.severity] > _SEVERITY.get(
                    outcomes[f.check], 0):
                outcomes[f.check] = f.severity
    findings.sort(key=lambda f: -_SEVERITY[f.severity])
    return CheckRun(findings, outcomes, list(run.errors))
