"""torchrun / DDP: every rank watches its own training; rank 0 merges and reports.

nbdebug uses the process group the script created and never makes one. Ranks talk only
through that group's key-value store: at each flush point (every ``FLUSH_EVERY`` steps,
between steps) a rank publishes a small record (per step since the last flush, a digest
of the norms of its replicated parameters at the step's start, taken on the device by
``capture.probes.replicas``) and, under another key, those norms; rank 0 compares the
records that have arrived and reads the norms only where two digests differ; at the end (in
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

from . import keys
from .capture.patches import Patches
from .capture.probes.replicas import ReplicaProbe, Window
from .capture.sampling import FLUSH_EVERY
from .checks.registry import CheckRun, run_checks
from .checks.replicas import differing, encode_rows, first_divergence
from .merge import MERGED_CHECKS, merge_findings, merge_observations, samplers
from .observations import Observations

#: seconds rank 0 waits, at the end, for the other ranks' summaries (NBDEBUG_DIST_TIMEOUT)
END_TIMEOUT = 60.0
#: flush records a rank keeps (memory stays bounded on long runs; every other one dropped)
MAX_RECORDS = 32
#: flush steps rank 0 keeps waiting for late ranks' records (older ones are given up);
#: each rank keeps as many flush records in the store, one key each, reused in turn
LIVE_STEPS = 8
#: gradient clipping's total norms a rank sends at the end (the latest ones)
CLIP_NORMS = 64
#: the collectives counted (on hooked steps): name -> position of ``async_op``
COLLECTIVES = {"all_reduce": 3, "reduce_scatter": 4, "reduce_scatter_tensor": 4}
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
        self._own_rows: dict[int, Any] = {}            # step -> rank 0's rows, while waiting
        self.first_drift: dict[str, Any] | None = None
        #: collectives the script called on hooked steps, and how (gradient averaging)
        self.sync = {"all_reduce": 0, "reduce_scatter": 0, "on_grads": 0, "async": 0}
        self._grads: tuple[int, set[int]] = (-1, set())
        self.flush_seconds: list[float] = []
        self.exchange_seconds: float | None = None
        self.summaries: list[dict[str, Any]] = []
        self.missing: list[int] = []
        self.grouped = False
        self._run: CheckRun | None = None
        self.patches = Patches()
        self.capture.listeners.append(self.on_flush)
        self.capture.flushes.fixed = True       # every rank publishes at the same steps
        #: the per-step checksum of the replicated parameters (this rank's)
        self.replicas = ReplicaProbe(self.capture.ctx)
        self.capture.add_probe(self.replicas)
        import torch.distributed as dist
        from torch.distributed import distributed_c10d as c10d
        for owner in (dist, c10d):
            if hasattr(owner, "destroy_process_group"):
                self.patches.wrap(owner, "destroy_process_group", self.capture.guard,
                                  before=self._on_destroy, steady=True)
        # counted on hooked steps only: steady steps take these wrappers off
        for name in COLLECTIVES:
            if hasattr(dist, name):
                self.capture.patches.wrap(
                    dist, name, self.capture.guard, original=getattr(c10d, name, None),
                    before=lambda a, k, name=name: self._on_collective(name, a, k))

    @property
    def leader(self) -> bool:
        """Whether this rank prints and saves: rank 0."""
        return self.rank == 0

    def close(self) -> None:
        for err in self.patches.remove_all():
            self.capture.log.add("distributed", err, self.patches.tracebacks.get(err, err))

    def _on_collective(self, name: str, args: tuple, kwargs: dict) -> None:
        """A collective of the script's: is it averaging gradients, and how."""
        kind = "all_reduce" if name == "all_reduce" else "reduce_scatter"
        self.sync[kind] += 1
        at = COLLECTIVES[name]
        if kind == "all_reduce" and kwargs.get("async_op", args[at] if len(args) > at
                                                else False):
            self.sync["async"] += 1
        t = args[0] if args else kwargs.get("tensor", kwargs.get("output"))
        step = self.capture.step
        if self._grads[0] != step:
            entry = self.replicas.entry or next(iter(self.capture.models), None)
            module = entry.module() if entry is not None else None
            self._grads = (step, {id(p.grad) for p in (module.parameters() if module is not
                                                         None else ()) if p.grad is not None})
        if kind == "all_reduce" and id(t) in self._grads[1]:
            self.sync["on_grads"] += 1

    # -- flush points ----------------------------------------------------------------
    def on_flush(self, obs: Observations) -> None:
        """Between steps, at every FLUSH_EVERY-th step: publish, and merge on rank 0."""
        step = obs.steps
        if step == 0 or step % FLUSH_EVERY or (self.records and self.records[-1]["step"] == step):
            return
        t0 = time.perf_counter()
        try:
            record, rows = self._window(step, self.replicas.take())
            self.records.append(record)
            if len(self.records) > MAX_RECORDS:
                self.records = self.records[::2]
            g = group()
            if g is not None:
                store, rank, world = g
                self.rank, self.world = rank, world
                # LIVE_STEPS keys per rank, reused in turn: the store's share stays bounded
                store.set(self._key("rows", rank, step), _dumps(rows))
                store.set(self._key("flush", rank, step), _dumps(record))
                if rank == 0:
                    self._merge_live(store, world, step, record, rows, obs)
        except Exception:
            self.capture.record_error("distributed flush")
        self.flush_seconds.append(time.perf_counter() - t0)

    def _key(self, kind: str, rank: int, step: int) -> str:
        return f"{self.prefix}/{kind}/{rank}/{step // FLUSH_EVERY % LIVE_STEPS}"

    @staticmethod
    def _window(step: int, window: Window | None) -> tuple[dict[str, Any], dict[str, Any]]:
        """A window's record (the digests) and its rows, for the store."""
        if window is None:
            return {"step": step, "steps": [], "digests": {}}, {"step": step, "steps": [],
                                                                "names": [], "keys": []}
        rows = dict(encode_rows(window.steps, window.rows, window.names, window.keys),
                    step=step)
        return {"step": step, "steps": window.steps, "digests": window.digests()}, rows

    def _merge_live(self, store: Any, world: int, step: int, record: dict[str, Any],
                    rows: dict[str, Any], obs: Observations) -> None:
        """Take the records other ranks have already published; never wait for one."""
        self.live.setdefault(step, {})[0] = record
        self._own_rows[step] = rows
        self._compare_live(store, world, obs)

    def _compare_live(self, store: Any, world: int, obs: Observations) -> None:
        """Compare the flush steps every rank has published; name the parameters of the
        first divergence from the two ranks' rows."""
        def fetch(kind: str, rank: int, at: int) -> Any:
            key = self._key(kind, rank, at)
            if not store.check([key]):            # get() would wait for a missing key
                return None
            value = json.loads(store.get(key))
            return value if value.get("step") == at else None
        found = take_live(self.live, world, lambda r, at: fetch("flush", r, at))
        if found is not None and (self.first_drift is None
                                  or found["row_step"] < self.first_drift["row_step"]):
            at = found["flush"]
            ref, mine = (self._own_rows.get(at) if r == 0 else fetch("rows", r, at)
                         for r in (found["reference"], found["rank"]))
            if ref is not None and mine is not None:
                found["params"] = differing(ref, mine, found["row_step"], found["group"])
            self.first_drift = found
        for at in [at for at in self._own_rows if at not in self.live]:
            del self._own_rows[at]
        obs.extra["ranks_live"] = {"world_size": world, "step": obs.steps,
                                   "drift": self.first_drift, "waiting": sorted(self.live)}

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
            self.replicas.release()           # (nbdebug keeps no parameter after the run)
            store.set(f"{self.prefix}/end/{self.rank}", _dumps(summary))
            self.grouped = True
            if self.rank == 0:
                self.summaries = [summary] + self._collect(store)
                if self.live:                 # every rank has flushed by now: the last
                    self._compare_live(store, self.world, obs)     # waiting steps
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
        record, tail = self._window(obs.steps, self.replicas.take(final_step=obs.steps))
        plan = self.replicas.plan
        clip = obs.timelines.get(keys.CLIP_TOTAL_NORM)
        return {
            "rank": self.rank, "steps": obs.steps, "epochs": obs.epochs,
            "batches": sum(ld.batches for ld in train),
            "batch_sizes": [ld.batch_size for ld in train],
            "samplers": samplers(self.capture),
            "norm_layers": sorted({m.type for mi in obs.models for m in mi.modules
                                   if "Norm" in m.type}),
            "nan": asdict(obs.nan) if obs.nan is not None else None,
            "records": self.records + [record], "tail": tail,
            "replicas": plan.facts() if plan is not None else None,
            "sync": dict(self.sync, ddp=bool(plan and plan.ddp),
                         dtensor=bool(plan and plan.dtensor), fsdp=bool(plan and plan.fsdp)),
            "clip": {"calls": obs.dynamics.get("clip_calls", 0),
                     "norms": dict(zip(clip.steps[-CLIP_NORMS:], clip.values[-CLIP_NORMS:]))
                     if clip is not None else {}},
            "findings": [asdict(f) for f in local.findings if f.check not in MERGED_CHECKS],
            "outcomes": local.outcomes,
            "errors": len(self.capture.errors) + len(local.errors),
            "flush_ms": self._flush_ms(),
        }

    def _flush_ms(self) -> dict[str, float] | None:
        """Time a flush point spent on merging here (rows, publish, merge), in ms."""
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
                "replicas": (self.replicas.plan.facts() if self.replicas.plan is not None
                             else None),
                "flush_ms_by_rank": {s["rank"]: s.get("flush_ms") for s in self.summaries},
                "exchange_ms": (round(self.exchange_seconds * 1e3, 3)
                                if self.exchange_seconds is not None else None)}


def take_live(live: dict[int, dict[int, Any]], world: int, fetch: Any) -> dict[str, Any] | None:
    """Add the records of the steps waiting in ``live`` that the other ranks have published
    (``fetch(rank, step)``: that rank's record of that flush step, or None: none yet).

    ``live`` maps step -> rank -> record. Steps every rank has published are compared and
    dropped; at most ``LIVE_STEPS`` steps wait for late ranks. Returns the earliest
    divergence found among the completed steps (``first_divergence``, with the flush
    step as ``"flush"``), or None.
    """
    for s in sorted(live):
        for r in range(1, world):
            if r in live[s]:
                continue
            try:
                rec = fetch(r, s)
            except Exception:
                rec = None
            if rec is not None:
                live[s][r] = rec
    found = None
    for s in sorted(live):
        if len(live[s]) == world:
            d = first_divergence({r: [rec] for r, rec in live.pop(s).items()})
            if d is not None and (found is None or d["row_step"] < found["row_step"]):
                found = dict(d, flush=s)
    for s in sorted(live)[:-LIVE_STEPS]:
        del live[s]
    return found


def _dumps(value: Any) -> str:
    """JSON for the store; numpy and torch scalars become numbers, anything else text."""
    return json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
