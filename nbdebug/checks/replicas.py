"""Replicas across ranks: where they first differ, which parameters, and why (plain data).

Each rank sends, per window of steps, a digest of its row of parameter norms at the start
of every step, per replica group (``capture.probes.replicas``); the rows themselves travel
apart and are read only where two digests differ. Two replicas are equal at a step
exactly when their digests are: the comparison has no tolerance.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

#: the replica group of the parameters every rank holds the same (the probe's name)
EVERY_RANK = "all ranks"
#: parameters listed by name in a finding's evidence at most
MAX_LISTED = 12
#: total norms of the gradient clipping that differ by more than this are different
CLIP_RTOL = 1e-6


def encode_rows(steps: list[int], rows: np.ndarray, names: list[str],
                keys: list[str]) -> dict[str, Any]:
    """A window's rows as plain data (JSON): float64 bytes in base64."""
    return {"steps": list(steps), "names": list(names), "keys": list(keys),
            "rows": base64.b64encode(np.ascontiguousarray(rows, np.float64).tobytes()).decode()}


def decode_rows(payload: dict[str, Any]) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(payload["rows"]), dtype=np.float64)
    return raw.reshape(len(payload["steps"]), len(payload["names"]))


def _table(records: list[dict[str, Any]]) -> dict[str, dict[int, str]]:
    """group -> step -> digest, from a rank's window records."""
    out: dict[str, dict[int, str]] = {}
    for rec in records:
        for key, digests in (rec.get("digests") or {}).items():
            out.setdefault(key, {}).update(zip(rec["steps"], digests))
    return out


def first_divergence(by_rank: dict[int, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """The earliest step at whose start two ranks of one replica group hold different
    parameters: ``{"row_step", "rank", "reference", "group", "last_equal"}``, or None.

    ``by_rank`` maps a rank to its window records (``{"steps", "digests": {group:
    [digest per step]}}``); a group's reference is its lowest rank, and only the steps
    both ranks recorded are compared.
    """
    tables = {int(r): _table(recs) for r, recs in by_rank.items()}
    best: dict[str, Any] | None = None
    for key in sorted({k for t in tables.values() for k in t}):
        members = sorted(r for r, t in tables.items() if key in t)
        for r in members[1:]:
            ref, mine = tables[members[0]][key], tables[r][key]
            last = None
            for s in sorted(set(ref) & set(mine)):
                if ref[s] != mine[s]:
                    if best is None or s < best["row_step"]:
                        best = {"row_step": s, "rank": r, "reference": members[0],
                                "group": key, "last_equal": last}
                    break
                last = s
    return best


def compared_steps(by_rank: dict[int, list[dict[str, Any]]]) -> list[int]:
    """[first, last, count] of the steps every rank recorded in some group, or []."""
    tables = [_table(recs) for recs in by_rank.values()]
    if len(tables) < 2:
        return []
    steps = [set().union(*t.values()) if t else set() for t in tables]
    common = sorted(set.intersection(*steps))
    return [common[0], common[-1], len(common)] if common else []


def differing(ref: dict[str, Any], mine: dict[str, Any], step: int,
              group: str) -> list[dict[str, Any]] | None:
    """The parameters of ``group`` whose norms differ at the start of ``step`` between two
    ranks' row payloads, in the model's order with their relative difference; None when a
    payload lacks that step."""
    if step not in ref["steps"] or step not in mine["steps"]:
        return None
    a = decode_rows(ref)[ref["steps"].index(step)]
    b = decode_rows(mine)[mine["steps"].index(step)]
    theirs = {(n, k): i for i, (n, k) in enumerate(zip(mine["names"], mine["keys"]))}
    out = []
    for i, (name, key) in enumerate(zip(ref["names"], ref["keys"])):
        j = theirs.get((name, key))
        if key != group or j is None or a[i] == b[j]:
            continue
        rel = abs(a[i] - b[j]) / (abs(a[i]) + abs(b[j]) or 1.0)
        out.append({"name": name, "relative_difference": float(rel)})
    return out


def cause(ranks: list[dict[str, Any]], found: dict[str, Any]) -> tuple[str, str, str]:
    """Why the replicas drifted, from what each rank did: (kind, sentence, fix)."""
    sync = [s.get("sync") or {} for s in ranks]
    clips = {s["rank"]: (s.get("clip") or {}) for s in ranks}
    ddp = any(s.get("ddp") for s in sync)
    reduces = sum(s.get("all_reduce", 0) + s.get("reduce_scatter", 0) for s in sync)
    on_grads = sum(s.get("on_grads", 0) for s in sync)
    asynchronous = sum(s.get("async", 0) for s in sync)
    same = ("Clip on every rank with one total norm: the norm over all the gradients, the "
            "sharded ones' squared norms summed across their tensor-parallel group (an "
            "all_reduce) before the square root, so that every rank scales its gradients by "
            "the same factor.")
    if found.get("row_step") == 0:
        return ("start",
                "they differed before the first update: the ranks built or seeded the model "
                "differently" + ("" if ddp or reduces else ", and nothing averages the "
                                 "gradients"),
                "Seed the model the same on every rank (torch.manual_seed before building "
                "it) and wrap it in torch.nn.parallel.DistributedDataParallel, which "
                "broadcasts rank 0's parameters and averages the gradients.")
    clipped = sorted(r for r, c in clips.items() if c.get("calls"))
    if clipped and len(clipped) < len(clips):
        never = sorted(set(clips) - set(clipped))
        return ("clip-some-ranks",
                f"gradient clipping ran on rank{_s(clipped)} {_list(clipped)} but never on "
                f"rank{_s(never)} {_list(never)}, so the ranks update with different "
                "gradients", same)
    tensor_parallel = any(s.get("dtensor") for s in sync)
    norms = _clip_norms_differ(clips) if ddp or reduces or tensor_parallel else None
    if norms is not None:
        step, values = norms
        shown = ", ".join(f"{v:.6g} on rank {r}" for r, v in sorted(values.items()))
        return ("clip-norm",
                f"gradient clipping used a different total norm on each rank (at step "
                f"{step}: {shown}): a norm taken over each rank's own shards scales the "
                "replicated gradients by a different factor on each rank", same)
    if asynchronous:
        return ("async",
                f"{asynchronous} all_reduce call(s) ran with async_op=True: the gradients "
                "were averaged, but an update that runs before the returned work is waited "
                "on steps with each rank's own gradients (the average is lost)",
                "Call .wait() on the work each async all_reduce returns before "
                "optimizer.step() (or wrap the model in DistributedDataParallel).")
    if any(s.get("fsdp") for s in sync) and not ddp and found.get("group") == EVERY_RANK:
        return ("outside-fsdp",
                "FSDP averages the gradients of the parameters it shards, but these are "
                "outside every FSDP unit and nothing averages theirs",
                "Apply fully_shard (or FullyShardedDataParallel) to the root module too, "
                "after its submodules, so that every parameter belongs to an FSDP unit.")
    if reduces and not on_grads and not ddp:
        return ("copies",
                f"the gradients were averaged ({reduces} all_reduce/reduce_scatter calls), "
                "but on copies: none of the calls took a parameter's .grad, so unless the "
                "result is written back into .grad the optimizer steps on each rank's own "
                "gradients and the average is lost",
                "all_reduce the .grad tensors themselves (dist.all_reduce(p.grad); "
                "p.grad /= world_size) or copy the averaged result back into p.grad before "
                "optimizer.step(); simpler, wrap the model in DistributedDataParallel.")
    if ddp or on_grads or tensor_parallel:
        via = ("by DDP" if ddp else f"by {on_grads} all_reduce calls on .grad" if on_grads
               else "by the tensor-parallel layers' collectives")
        return ("lost",
                f"the gradients were averaged ({via}), yet a rank's parameters changed "
                "apart from the others: something after the averaging differs per rank (a "
                "gradient or parameter changed on one rank only, a clip or scaler per rank, "
                "an optimizer whose state or settings differ)",
                "Apply every change of gradients and parameters on all ranks alike, after "
                "the averaging; do not modify p.data or p.grad on one rank only, and give "
                "every rank the same optimizer settings.")
    return ("not-averaged",
            "the ranks train different models: their gradients are not being averaged",
            "Wrap the model in torch.nn.parallel.DistributedDataParallel after moving it to "
            "its device and before creating the optimizer; do not change parameters or "
            "buffers on one rank only, and seed the model the same on every rank.")


def _clip_norms_differ(clips: dict[int, dict[str, Any]]) -> tuple[int, dict[int, float]] | None:
    """The first step at which the ranks' clipping saw different total norms."""
    series = {r: {int(s): v for s, v in (c.get("norms") or {}).items()}
              for r, c in clips.items()}
    if len(series) < 2 or not all(series.values()):
        return None
    for step in sorted(set.intersection(*(set(s) for s in series.values()))):
        values = {r: s[step] for r, s in series.items()}
        lo, hi = min(values.values()), max(values.values())
        if hi - lo > CLIP_RTOL * max(abs(hi), abs(lo), 1e-12):
            return step, values
    return None


def _s(ranks: list[int]) -> str:
    return "s" if len(ranks) > 1 else ""


def _list(ranks: list[int]) -> str:
    return ", ".join(map(str, ranks))
