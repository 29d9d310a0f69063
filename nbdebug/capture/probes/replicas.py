"""Replicas (multi-rank runs only): a per-step checksum of the parameters meant to be
equal on every rank.

``nbdebug.distributed`` adds this probe when the process is one rank of several. At the
first training forward of each step (the parameters as the last update left them) it
takes one fused ``_foreach_norm`` of those parameters; the norms stay on the device until
the flush, where ``take`` stacks them and copies them to the host once. Which parameters
count, and with which others each must agree (``plan``):

- plain parameters: the same on every rank (DDP, or a data-parallel loop by hand);
- DTensor parameters: within their mesh, equal across the mesh dimensions they are
  ``Replicate`` on (a tensor-parallel ``Shard`` on a one-dimensional mesh: nothing to
  compare, skipped);
- parameters under FSDP (``FullyShardedDataParallel`` or ``fully_shard``), and those
  DDP was told to ignore: skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from .base import Probe

#: the key of the parameters every rank holds the same
EVERY_RANK = "all ranks"
#: rows held between flushes at most (a flush takes them every FLUSH_EVERY steps)
MAX_ROWS = 256


@dataclass
class Plan:
    """The compared parameters of one model, in its order, and what was left out."""
    names: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)        # the replica group of each
    tensors: list[torch.Tensor] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)         # the parameters', to see a swap
    skipped: dict[str, list[str]] = field(default_factory=dict)
    ddp: bool = False
    dtensor: bool = False                 # some are DTensors outside FSDP (tensor parallel)
    fsdp: bool = False                    # some are FSDP's
    dtype: Any = None                     # the norms' dtype (None: the parameters' own)

    def facts(self) -> dict[str, Any]:
        groups: dict[str, int] = {}
        for k in self.keys:
            groups[k] = groups.get(k, 0) + 1
        return {"compared": len(self.names), "groups": groups,
                "skipped": {why: len(names) for why, names in self.skipped.items()},
                "skipped_names": {why: names[:8] for why, names in self.skipped.items()}}


def plan(module: nn.Module, names: dict[int, str]) -> Plan:
    """Which parameters of ``module`` are compared across ranks, and within which group."""
    out = Plan()
    left_out: dict[int, str] = {}
    for m in module.modules():
        if _fsdp(m):
            for p in m.parameters():
                left_out.setdefault(id(p), "FSDP shard")
        if isinstance(m, nn.parallel.DistributedDataParallel):
            out.ddp = True
            ignored = set(getattr(m, "parameters_to_ignore", ()) or ())
            for n, p in m.module.named_parameters():
                if n in ignored:
                    left_out.setdefault(id(p), "ignored by DDP")
    for i, p in enumerate(module.parameters()):
        name = names.get(id(p), f"#{i}")
        why = left_out.get(id(p))
        local: torch.Tensor = p
        key: str | None = EVERY_RANK
        if why is None and getattr(p, "_is_flat_param", False):
            why = "FSDP shard"
        if _is_dtensor(p):
            out.dtensor = out.dtensor or why is None
            key, local = _dtensor_group(p), p._local_tensor  # type: ignore[attr-defined]
            if key is None and why is None:
                why = "sharded (DTensor)"
        if why is None and not (local.is_floating_point() and local.numel()):
            why = "not floating point" if local.numel() else "empty"
        if why is not None:
            out.fsdp = out.fsdp or why == "FSDP shard"
            out.skipped.setdefault(why, []).append(name)
            continue
        out.names.append(name)
        out.keys.append(key or EVERY_RANK)
        out.tensors.append(local.detach())
        out.ids.append(id(p))
    dtypes = {t.dtype for t in out.tensors}
    if len(dtypes) > 1 or not dtypes <= {torch.float32, torch.float64}:
        out.dtype = torch.float64           # one dtype for the stack; low precision widened
    return out


def _fsdp(m: nn.Module) -> bool:
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:                               # pragma: no cover (older torch)
        return False
    return isinstance(m, (FSDPModule, FullyShardedDataParallel))


def _is_dtensor(p: torch.Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:                               # pragma: no cover
        return False
    return isinstance(p, DTensor)


def _dtensor_group(p: Any) -> str | None:
    """The replica group of a DTensor's local tensor: its mesh, and its coordinates on the
    mesh dimensions it is not replicated on; None when no other rank holds the same."""
    from torch.distributed.tensor import Replicate
    mesh = p.device_mesh
    coord = mesh.get_coordinate()
    if coord is None:
        return None
    copies, at = 1, []
    for dim, placement in enumerate(p.placements):
        if isinstance(placement, Replicate):
            copies *= mesh.size(dim)
        else:
            at.append(f"{dim}:{coord[dim]}")
    if copies <= 1:
        return None
    ranks = mesh.mesh.flatten().tolist()
    return f"mesh {ranks[0]}..{ranks[-1]} ({len(ranks)} ranks)" + (
        f" at {','.join(at)}" if at else "")


@dataclass
class Window:
    """Rows taken on the host: ``rows[i]`` are the norms at the start of ``steps[i]``."""
    steps: list[int]
    rows: np.ndarray                      # float64, (len(steps), len(names))
    names: list[str]
    keys: list[str]

    def digests(self) -> dict[str, list[str]]:
        """Per replica group, a digest of each row: equal exactly when the norms are."""
        out: dict[str, list[str]] = {}
        for key in dict.fromkeys(self.keys):
            cols = [i for i, k in enumerate(self.keys) if k == key]
            part = np.ascontiguousarray(self.rows[:, cols])
            out[key] = [hashlib.blake2b(r.tobytes(), digest_size=8).hexdigest() for r in part]
        return out


class ReplicaProbe(Probe):
    """Not in ``PROBES``: ``Capture.add_probe`` adds it to a multi-rank run."""

    STEADY = frozenset({"train_input"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.entry: Any = None
        self.plan: Plan | None = None
        self._rows: list[tuple[int, list[torch.Tensor]]] = []
        self._last = -1

    def train_input(self, entry: Any, module: nn.Module, args: tuple) -> None:
        """The first training forward of a step: the norms of the compared parameters."""
        step = self.ctx.step
        if step == self._last:
            return                        # (a second forward of the step: accumulation)
        if self.plan is None:
            self.entry, self.plan = entry, plan(module, entry.param_names)
        elif entry is not self.entry:
            return                        # (one model: the first one trained)
        self._last = step
        if self.plan.tensors:
            self._rows.append((step, self._norms()))
            if len(self._rows) > MAX_ROWS:
                del self._rows[0]

    def _norms(self) -> list[torch.Tensor]:
        p = self.plan
        assert p is not None
        if p.dtype is None:
            return list(torch._foreach_norm(p.tensors))
        return list(torch._foreach_norm(p.tensors, 2, dtype=p.dtype))

    def take(self, final_step: int | None = None) -> Window | None:
        """The rows since the last take, on the host (one copy); with ``final_step``, a last
        row of the parameters as they are now, for that step (the end of the run)."""
        p = self.plan
        if p is None or not p.tensors:
            return None
        rows, self._rows = self._rows, []
        if final_step is not None and (not rows or rows[-1][0] < final_step) and (
                final_step > self._last):
            rows.append((final_step, self._norms()))
            self._last = final_step
        if not rows:
            return None
        flat = torch.stack([t for _, ts in rows for t in ts])
        values = flat.to(torch.float64).cpu().numpy().reshape(len(rows), len(p.names))
        self._check_plan()
        return Window([s for s, _ in rows], values, list(p.names), list(p.keys))

    def release(self) -> None:
        """Let go of the parameters (the run's end): the plan's names and facts stay."""
        if self.plan is not None:
            self.plan.tensors = []
        self._rows = []

    def _check_plan(self) -> None:
        """Parameters replaced since the plan was made (``module.weight = ...``): plan
        again, so that no old tensor is kept nor compared."""
        module = self.entry.module() if self.entry is not None else None
        if module is None:
            self.plan = Plan()
            return
        ids = {id(p) for p in module.parameters()}
        assert self.plan is not None
        if any(i not in ids for i in self.plan.ids):
            self.plan = plan(module, self.entry.param_names)
