"""torchrun / DDP: every rank watches its own training; rank 0 merges and reports.

nbdebug uses the process group the script created and never makes one. Ranks talk only
through that group's key-value store: at each flush point (every ``FLUSH_EVERY`` steps,
between steps) a rank publishes a small record (its step and a fingerprint of its
parameters) and rank 0 merges the records that have arrived; at the end (in
``destroy_process_group`` or when the run ends) each rank publishes its summary (findings,
first NaN, loader and sampler facts) and rank 0 waits for them, with a timeout, and builds
one report. Store operations pair with nothing, unlike collectives: a rank that is behind,
has uneven batches under ``Join``, or died cannot be matched against the training's own
all-reduces, so nbdebug can neither hang nor corrupt them. Every failure here is recorded
as an internal error and the training goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from .capture.core import FLUSH_EVERY
from .capture.patches import Patches
from .checks.registry import CheckRun, run_checks
from .merge import (MERGED_CHECKS, fingerprint, merge_findings, merge_observations,
                    param_names, samplers)
from .observations import Observations

#: seconds rank 0 waits, at the end, for the other ranks' summaries (NBDEBUG_DIST_TIMEOUT)
END_TIMEOUT = 60.0
#: flush records a rank keeps (memory stays bounded on long runs; every other one dropped)
MAX_RECORDS = 32
#: flush steps rank 0 keeps waiting for late ranks' records (older ones are given up)
LIVE_STEPS = 8
_SESSIONS = itertools.count()


def env_world() -> tuple[int, int]:
    """(rank, world size) as torchrun announces them in the environment."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 0, 1


def group() -> tuple[Any, int, int] | None:
    """(store, rank, world size) of the script's default process group, or None."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    from torch.distributed import distributed_c10d as c10d
    return c10d._get_default_store(), dist.get_rank(), dist.get_world_size()


def attach(session: Any) -> Merger | None:
    """A Merger when this process is one rank of several (torchrun, or a group already up)."""
    try:
        rank, world = env_world()
        if world <= 1:
            g = group()
            if g is None or g[2] <= 1:
                return None
        return Merger(session)
    except Exception:
        session.capture.record_error("distributed attach")
        return None


def attach_on_init(session: Any) -> None:
    """No group at the start (a rank started by ``mp.spawn`` or ``multiprocessing``, with
    no WORLD_SIZE): attach the Merger when the script makes its default group."""
    try:
        import torch.distributed as dist
        if not dist.is_available():
            return
        from torch.distributed import distributed_c10d as c10d

        def made(args: tuple, kwargs: dict, result: Any) -> None:
            if session.merger is None and session.watching:
                session.merger = attach(session)
        for owner in (dist, c10d):
            session.capture.patches.wrap(owner, "init_process_group", session.capture.guard,
                                         after=made, steady=True)
    except Exception:
        session.capture.record_error("distributed attach")


class Merger:
    """Publishes this rank's records; on rank 0, merges everyone's into one report."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.capture = session.capture
        self.rank, self.world = env_world()
        g = group()
        if g is not None:
            self.rank, self.world = g[1], g[2]
        self.prefix = f"nbdebug/{next(_SESSIONS)}"
        self.timeout = float(os.environ.get("NBDEBUG_DIST_TIMEOUT", END_TIMEOUT))
        self.records: list[dict[str, Any]] = []
        self.live: dict[int, dict[int, Any]] = {}      # step -> rank -> record (rank 0)
        self.first_drift: dict[str, Any] | None = None
        self._published: set[int] = set()     # ranks whose flush key exists (rank 0)
        self.flush_seconds: list[float] = []
        self.exchange_seconds: float | None = None
        self.summaries: list[dict[str, Any]] = []
        self.missing: list[int] = []
        self.grouped = False
        self._run: CheckRun | None = None
        self.patches = Patches()
        self.capture.listeners.append(self.on_flush)
        import torch.distributed as dist
        from torch.distributed import distributed_c10d as c10d
        for owner in (dist, c10d):
            if hasattr(owner, "destroy_process_group"):
                self.patches.wrap(owner, "destroy_process_group", self.capture.guard,
                                  before=self._on_destroy, steady=True)

    @property
    def leader(self) -> bool:
        """Whether this rank prints and saves: rank 0."""
        return self.rank == 0

    def close(self) -> None:
        for err in self.patches.remove_all():
            self.capture.log.add("distributed", err, self.patches.tracebacks.get(err, err))

    # -- flush points ----------------------------------------------------------------
    def on_flush(self, obs: Observations) -> None:
        """Between steps, at every FLUSH_EVERY-th step: publish, and merge on rank 0."""
        step = obs.steps
        if step == 0 or step % FLUSH_EVERY or (self.records and self.records[-1]["step"] == step):
            return
        t0 = time.perf_counter()
        try:
            record = self._record(step)
            self.records.append(record)
            if len(self.records) > MAX_RECORDS:
                self.records = self.records[::2]
            g = group()
            if g is not None:
                store, rank, world = g
                self.rank, self.world = rank, world
                # one key per rank, overwritten: the store holds only the latest record
                store.set(f"{self.prefix}/flush/{rank}", _dumps(record))
                if rank == 0:
                    self._merge_live(store, world, step, record, obs)
        except Exception:
            self.capture.record_error("distributed flush")
        self.flush_seconds.append(time.perf_counter() - t0)

    def _merge_live(self, store: Any, world: int, step: int, record: dict[str, Any],
                    obs: Observations) -> None:
        """Take the records other ranks have already published; never wait for one."""
        self.live.setdefault(step, {})[0] = record

        def fetch(rank: int) -> Any:
            key = f"{self.prefix}/flush/{rank}"
            if rank not in self._published:       # get() would wait for a missing key
                if not store.check([key]):
                    return None
                self._published.add(rank)
            return json.loads(store.get(key))
        found = take_live(self.live, world, fetch)
        if found is not None and self.first_drift is None:
            self.first_drift = found
        obs.extra["ranks_live"] = {"world_size": world, "step": step,
                                   "drift": self.first_drift, "waiting": sorted(self.live)}

    def _record(self, step: int) -> dict[str, Any]:
        return {"step": step, "fingerprint": fingerprint(self.capture)}

    # -- the end ---------------------------------------------------------------------
    def _on_destroy(self, args: tuple, kwargs: dict) -> None:
        """The script ends the default group: merge while the group's store still works."""
        if (args[0] if args else kwargs.get("group")) is None:
            try:
                self.exchange(self.session.observations(), self.session.check_ids)
            except Exception:
                self.capture.record_error("distributed end")

    def exchange(self, obs: Observations, check_ids: list[str]) -> CheckRun:
        """Run this rank's checks and send them; rank 0 merges every rank's. Done once."""
        if self._run is not None:
            return self._run
        local = run_checks(obs, check_ids)
        self._run = local
        g = group()
        if g is None:
            obs.notes.append(f"WORLD_SIZE is {self.world} but the script did not set up "
                             "torch.distributed (init_process_group) before the end: this "
                             f"report covers rank {self.rank} only")
            return local
        t0 = time.perf_counter()
        try:
            store, self.rank, self.world = g
            summary = self._summary(obs, local)
            store.set(f"{self.prefix}/end/{self.rank}", _dumps(summary))
            self.grouped = True
            if self.rank == 0:
                self.summaries = [summary] + self._collect(store)
                merge_observations(obs, self.summaries, self.world, self.missing)
                merged = run_checks(obs, check_ids)
                self._run = merge_findings(merged, self.summaries)
        except Exception:                     # this rank's own report still comes out
            self.capture.record_error("distributed end")
        self.exchange_seconds = time.perf_counter() - t0
        return self._run

    def _collect(self, store: Any) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.timeout
        out = []
        for r in range(1, self.world):
            key = f"{self.prefix}/end/{r}"
            try:
                store.wait([key], timedelta(seconds=max(0.1, deadline - time.monotonic())))
                out.append(json.loads(store.get(key)))
                store.delete_key(key)
            except Exception:
                self.missing.append(r)
        return out

    def _summary(self, obs: Observations, local: CheckRun) -> dict[str, Any]:
        train = obs.train_loaders
        records = list(self.records)
        if not records or records[-1]["step"] != obs.steps:
            records.append(self._record(obs.steps))
        return {
            "rank": self.rank, "steps": obs.steps, "epochs": obs.epochs,
            "batches": sum(ld.batches for ld in train),
            "batch_sizes": [ld.batch_size for ld in train],
            "samplers": samplers(self.capture),
            "norm_layers": sorted({m.type for mi in obs.models for m in mi.modules
                                   if "Norm" in m.type}),
            "nan": asdict(obs.nan) if obs.nan is not None else None,
            "records": records,
            "param_names": param_names(self.capture),
            "findings": [asdict(f) for f in local.findings if f.check not in MERGED_CHECKS],
            "outcomes": local.outcomes,
            "errors": len(self.capture.errors) + len(local.errors),
            "flush_ms": self._flush_ms(),
        }

    def _flush_ms(self) -> dict[str, float] | None:
        """Time a flush point spent on merging here (fingerprint, publish, merge), in ms."""
        if not self.flush_seconds:
            return None
        ms = sorted(t * 1e3 for t in self.flush_seconds)
        return {"mean": round(sum(ms) / len(ms), 4), "median": round(ms[len(ms) // 2], 4),
                "max": round(ms[-1], 4)}

    def facts(self) -> dict[str, Any]:
        """What the report's ``run.distributed`` says about the merge."""
        return {"rank": self.rank, "world_size": self.world, "merged": self.grouped,
                "ranks_reporting": sorted(s["rank"] for s in self.summaries),
                "missing_ranks": list(self.missing), "flushes": len(self.flush_seconds),
                "flush_ms": self._flush_ms(),
                "flush_ms_by_rank": {s["rank"]: s.get("flush_ms") for s in self.summaries},
                "exchange_ms": (round(self.exchange_seconds * 1e3, 3)
                                if self.exchange_seconds is not None else None)}


def take_live(live: dict[int, dict[int, Any]], world: int, fetch: Any) -> dict[str, Any] | None:
    """Add each rank's latest record, ``fetch(rank)`` (None: none yet), to ``live``.

    ``live`` maps step -> rank -> record. Steps every rank has published are compared and
    dropped; at most ``LIVE_STEPS`` steps wait for late ranks. Returns the first drift
    found among the completed steps, or None.
    """
    from .checks.distributed import drift
    for r in range(1, world):
        try:
            rec = fetch(r)
        except Exception:
            rec = None
        if rec is not None and rec.get("step") in live:
            live[rec["step"]][r] = rec
    found = None
    for s in sorted(live):
        if len(live[s]) == world:
            found = found or drift([live.pop(s)])
    for s in sorted(live)[:-LIVE_STEPS]:
        del live[s]
    return found


def _dumps(value: Any) -> str:
    """JSON for the store; numpy and torch scalars become numbers, anything else text."""
    return json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
