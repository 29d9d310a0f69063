"""What one rank tells rank 0 at the end, and how rank 0 merges it: plain functions.

``fingerprint``, ``param_names`` and ``samplers`` read a rank's live capture (at a flush
point or the end, never inside a step); ``merge_observations`` and ``merge_findings`` work
on the summaries only, so they are tested with hand-made ones.
"""

from __future__ import annotations

from typing import Any

from .checks.registry import CheckRun
from .observations import NanEvent, Observations
from .report import Finding

#: checks rank 0 recomputes from the merged data: other ranks' findings of these are dropped
MERGED_CHECKS = ("nan-origin", "ddp-set-epoch", "ddp-batchnorm", "ddp-desync", "ddp-uneven")
_PHASE_ORDER = {"input": 0, "forward": 1, "loss": 2, "backward": 3}


def fingerprint(capture: Any) -> list[list[float]] | None:
    """Per parameter of the trained model: [sum, norm] (no copy of a parameter; one host copy).

    Equal replicas give bitwise equal fingerprints, whatever the dtype.
    """
    import torch
    for entry in capture.models.values():
        module = entry.module()
        if module is None or not entry.info.training_forwards:
            continue
        params = [p.detach() for p in module.parameters()]
        if not params:
            continue
        with torch.no_grad():
            sums = torch.stack([p.sum(dtype=torch.float64) for p in params])
            norms = torch.stack([n.to(torch.float64) for n in torch._foreach_norm(params)])
            rows = torch.stack([sums, norms], dim=1)
        return rows.cpu().tolist()
    return None


def param_names(capture: Any) -> list[str]:
    """Names of the parameters ``fingerprint`` covers, in the same order."""
    for entry in capture.models.values():
        module = entry.module()
        if module is not None and entry.info.training_forwards:
            return [entry.param_names.get(id(p), f"#{i}")
                    for i, p in enumerate(module.parameters())]
    return []


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
