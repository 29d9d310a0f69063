"""A step's fused row: its loss, NaN guards and per-parameter rows, read at the flush.

When a step ends, what it held on the device goes to the ``Pending`` buffer as one list
of 0-d tensors (stacked with every other scalar at the flush, so ending a step costs no
tensor operation). ``StepSink`` lays the host rows out again: the loss timeline, the
first non-finite guard (a ``NanEvent``), the gradient-norm and update-ratio rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .. import keys
from ..observations import NanEvent, Observations
from ..stats import Pending

#: loss-only steps handed over as one buffer item at most (memory stays bounded)
RUN_MAX = 256

@dataclass(slots=True)
class StepRecord:
    """What one training step holds until it ends: its losses, NaN guards and rows."""
    guards: list[torch.Tensor] = field(default_factory=list)
    guard_names: list[str] = field(default_factory=list)
    losses: list[torch.Tensor] = field(default_factory=list)
    backward: bool = False
    grads: bool = False
    last_guarded: Any = None
    #: per-parameter rows (key, names, 0-d values) copied with the step's loss and guards
    rows: list[tuple[str, tuple[str, ...], list[torch.Tensor]]] = field(default_factory=list)
    #: the step's shape: training forwards of a model, backward calls, batches drawn,
    #: forwards outside training, and the optimizers that stepped (ids, in order)
    forwards: int = 0
    backwards: int = 0
    batches: int = 0
    evals: int = 0
    updates: list[int] = field(default_factory=list)
    via: str = ""                     # "tensor": loss.backward(); "autograd": autograd.backward
    #: the step began on steady hooks: its batch was drawn unseen
    unseen: bool = False

    def shape(self) -> tuple[Any, ...]:
        return (self.forwards, self.backwards, self.batches, self.evals, tuple(self.updates),
                self.via)

    def guard(self, name: str, value: torch.Tensor) -> None:
        self.guards.append(value)
        self.guard_names.append(name)



#: within one step, the order in which a NaN can first show
PHASE_ORDER = {"input": 0, "forward": 1, "loss": 2, "backward": 3}


def nan_candidate(obs: Observations, event: NanEvent) -> None:
    """Keep the earliest event; within one step the order is input, forward, loss, backward."""
    cur = obs.nan
    if cur is None or (event.step, PHASE_ORDER[event.phase]) < (
            cur.step, PHASE_ORDER[cur.phase]):
        obs.nan = event


def kind(v: float) -> str:
    return "nan" if math.isnan(v) else "inf"


class StepRows:
    """Ends steps into the buffer, and owns the column layout of the per-name rows."""

    def __init__(self, obs: Observations, pending: Pending) -> None:
        self.obs = obs
        self.pending = pending
        self._columns: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._sinks: dict[tuple[Any, ...], StepSink] = {}
        #: consecutive steps with a loss alone (steady steps): one buffer item for them all
        self._run_steps: list[int] = []
        self._run_losses: list[torch.Tensor] = []

    def commit(self, step: int, cur: StepRecord, lean: bool, with_loss: bool = True) -> None:
        """Hand the step's loss, guards and rows to the buffer as one row (a loss alone
        joins the run of such steps, handed over as one item)."""
        losses = cur.losses
        if len(losses) == 1 and with_loss and not cur.guards and not cur.rows:
            loss = losses[0]                  # a steady step: its loss alone
            self._run_steps.append(step)
            self._run_losses.append(loss if loss.dtype == torch.float32 else loss.float())
            if len(self._run_steps) >= RUN_MAX:
                self.close_run()
            return
        self.close_run()                      # the loss timeline stays in step order
        values: list[torch.Tensor] = []
        layout: list[tuple[Any, ...]] = []
        if cur.losses and with_loss:
            loss = cur.losses[0] if len(cur.losses) == 1 else torch.stack(cur.losses).mean()
            layout.append(("loss",))
            values.append(loss if loss.dtype == torch.float32 else loss.float())
        if cur.guards:
            layout.append(("guards", tuple(cur.guard_names), lean))
            values.extend(cur.guards)
        for key, names, norms in cur.rows:
            layout.append(("row", key, tuple(names)))
            values.extend(norms)
        if values:
            self.pending.put(step, values, self.sink(layout))   # stacked at the flush

    def extend_run(self, first: int, losses: list[torch.Tensor]) -> None:
        """Steps ``first``, ``first + 1`` ... with these losses alone (float32 scalars):
        the run of loss-only steps (a steady span's)."""
        self._run_steps.extend(range(first, first + len(losses)))
        self._run_losses.extend(losses)
        if len(self._run_steps) >= RUN_MAX:
            self.close_run()

    def close_run(self) -> None:
        """Hand the run of loss-only steps to the buffer (before a flush, or a fuller row)."""
        if self._run_steps:
            self.pending.put(self._run_steps[0], self._run_losses,
                             LossRun(self.obs, self._run_steps))
            self._run_steps, self._run_losses = [], []

    def sink(self, layout: list[tuple[Any, ...]]) -> StepSink:
        key = tuple(layout)
        sink = self._sinks.get(key)
        if sink is None:
            sink = self._sinks[key] = StepSink(self, layout)
        return sink

    def columns(self, key: str, names: tuple[str, ...]) -> list[int]:
        """The column of each name in the ``key`` timeline; new names add columns."""
        idx = self._columns.get((key, names))
        if idx is None:
            series = self.obs.series(key)
            if series.columns is None:
                series.columns = []
            cols = series.columns
            at = {n: i for i, n in enumerate(cols)}
            for n in names:
                if n not in at:
                    at[n] = len(cols)
                    cols.append(n)
            idx = self._columns[(key, names)] = [at[n] for n in names]
        return idx


class LossRun:
    """Where a run of loss-only steps goes on the host: the loss timeline, and a NaN/Inf
    at its first step."""

    def __init__(self, obs: Observations, steps: list[int]) -> None:
        self.obs, self.steps = obs, steps

    def __call__(self, step: int, arr: np.ndarray) -> None:
        values = arr.reshape(-1).tolist()
        self.obs.series(keys.LOSS).extend(self.steps, values)
        if not np.isfinite(arr).all():
            s, v = next((s, v) for s, v in zip(self.steps, values) if not math.isfinite(v))
            nan_candidate(self.obs, NanEvent(s, "loss", None, kind(v)))


class StepSink:
    """Where a step's fused row goes on the host, laid out as in ``layout``. One object per
    layout; ``batch`` takes the rows of many steps at once (the flush hands it a window's
    rows in one call)."""

    def __init__(self, rows: StepRows, layout: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.obs = rows.obs
        self.parts: list[tuple[tuple[Any, ...], int, int]] = []
        at = 0
        # ("loss",), ("guards", names, lean), ("row", key, names), ("ratio", key, names):
        # a ratio part holds the numerators, then the denominators, of a per-name row
        for part in layout:
            n = 1 if part[0] == "loss" else len(part[1] if part[0] == "guards" else part[2])
            n *= 2 if part[0] == "ratio" else 1
            self.parts.append((part, at, n))
            at += n

    def __call__(self, step: int, arr: np.ndarray) -> None:
        self.batch([step], arr.reshape(1, -1))

    def batch(self, steps: list[int], rows: np.ndarray) -> None:
        if np.isfinite(rows).all():
            self._finite(steps, rows.tolist())
            return
        obs = self.obs
        for part, at, n in self.parts:
            block = rows[:, at:at + n]
            finite = np.isfinite(block)
            ok = bool(finite.all())
            if part[0] == "loss":
                values = block[:, 0].tolist()
                obs.series(keys.LOSS).extend(steps, values)
                if not ok:
                    s, v = next((s, v) for s, v in zip(steps, values) if not math.isfinite(v))
                    nan_candidate(obs, NanEvent(s, "loss", None, kind(v)))
            elif part[0] == "guards":
                if not ok:
                    i = int(np.flatnonzero(~finite.all(1))[0])
                    self._guard_event(steps[i], part[1], part[2], block[i])
            else:
                self._row(part, steps, block, finite, ok)

    def _finite(self, steps: list[int], rows: list[list[float]]) -> None:
        """``batch`` of rows with no NaN or Inf (the usual case): plain lists, no array
        per part (a flush hands over dozens of short runs of rows)."""
        obs = self.obs
        for part, at, n in self.parts:
            kind = part[0]
            if kind == "loss":
                obs.series(keys.LOSS).extend(steps, [r[at] for r in rows])
            elif kind != "guards":
                key, names = part[1], part[2]
                if kind == "ratio":
                    half = len(names)
                    block = [[_ratio(a, b) for a, b in zip(r[at:at + half],
                                                          r[at + half:at + n])] for r in rows]
                else:
                    block = [r[at:at + n] for r in rows]
                idx = self.rows.columns(key, names)
                series = obs.series(key)
                width = len(series.columns or ())
                if idx != list(range(width)):          # (other names have columns too)
                    block = [_spread(r, idx, width) for r in block]
                series.extend(steps, block)

    def _row(self, part: tuple[Any, ...], steps: list[int], block: np.ndarray,
             finite: np.ndarray, ok: bool) -> None:
        key, names = part[1], part[2]
        if part[0] == "ratio":
            half = len(names)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                block = block[:, :half] / (block[:, half:] + 1e-12)
            finite = np.isfinite(block)
            ok = bool(finite.all())
        idx = self.rows.columns(key, names)
        series = self.obs.series(key)
        full = np.full((len(steps), len(series.columns or ())), math.nan)
        full[:, idx] = block
        series.extend(steps, full.tolist())
        if not ok and key == keys.GRAD_NORM:
            i = int(np.flatnonzero(~finite.all(1))[0])
            bad = [names[j] for j in np.flatnonzero(~finite[i])]
            nan_candidate(self.obs, NanEvent(steps[i], "backward", bad[0],
                                             detail={"params": bad}))

    def _guard_event(self, s: int, names: tuple[str, ...], lean: bool, arr: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(arr))
        i = int(bad[0])
        phase = "input" if names[i] == "<input>" else "forward"
        detail: dict[str, Any] = {"nonfinite_outputs": [names[j] for j in bad[:10]]}
        if i > 0 and names[i - 1] != "<input>":
            detail["last_finite_output"] = names[i - 1]
        if lean:
            detail["output_only"] = True         # a lean step guards the model's output
        nan_candidate(self.obs, NanEvent(s, phase, None if phase == "input" else names[i],
                                         kind(float(arr[i])), detail=detail))


def _ratio(a: float, b: float) -> float:
    """``a / (b + 1e-12)`` as numpy divides (a zero denominator gives an Inf or a NaN)."""
    d = b + 1e-12
    if d:
        return a / d
    return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1.0, d)


def _spread(values: list[float], idx: list[int], width: int) -> list[float]:
    """A row of ``width`` columns holding ``values`` at ``idx``, NaN elsewhere."""
    row = [math.nan] * width
    for i, v in zip(idx, values):
        row[i] = v
    return row
