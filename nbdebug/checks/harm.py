"""Evidence of harm: what a run shows, for the checks whose setup the article only advises
against (vanilla SGD, missing biases, strong dropout after convolutions, BatchNorm with
tiny batches).

Such a setup is ``info`` (advice) until the run shows the harm the article predicts; then
it is a warning. Each function here returns the evidence (a dict for the finding) or
None when the run shows no harm or too little to judge.
"""

from __future__ import annotations

import math
import statistics

from .. import keys
from ..observations import Observations
from .gradients import never_zeroed
from .heldout import rounds
from .loss import first_op
from .mixing import batch_mixing
from .timeline import diverged, finite, loss_shape

#: loss points needed before a run's progress is judged
PROGRESS_MIN_POINTS = 20
#: a run whose loss fell by less than this share of its start made (almost) no progress
STALL_DROP = 0.1
#: a training accuracy that climbs this much over the run shows progress
ACC_GAIN = 0.15
#: training accuracy (mean of the last points) from which the training set is fitted
FITTED_ACC = 0.9
#: a training loss below this share of its start has converged, however it got there
FITTED_LOSS = 0.05
#: held-out rounds needed before a gap or a rise is judged
MIN_ROUNDS = 3
#: held-out loss ending this share above its minimum (after the minimum) has risen
HELDOUT_RISE = 0.1
#: the train/held-out accuracy gap must grow by this much over the rounds, and end above
GAP_GROWTH = 0.1
GAP_END = 0.15
#: held-out accuracy in eval mode this far below the training accuracy (train mode) at
#: the end: the running statistics BatchNorm uses in eval mode do not fit
EVAL_MODE_GAP = 0.25
#: held-out accuracy in eval mode this far above the training accuracy in train mode: the
#: batch statistics hurt the model more than their running average does
TRAIN_MODE_GAP = 0.15


def _accuracy_tail(obs: Observations, points: int = 3) -> list[float]:
    """The training accuracy's last points (a tenth of them, ``points`` at least)."""
    acc = obs.timelines.get("train_acc")
    if acc is None or len(acc) < points:
        return []
    return finite(acc.values[-max(points, len(acc) // 10):])


def train_accuracy(obs: Observations, points: int = 3) -> float | None:
    tail = _accuracy_tail(obs, points)
    return statistics.fmean(tail) if tail else None


def train_accuracy_samples(obs: Observations, points: int = 3) -> int:
    """The training samples behind ``train_accuracy`` (its points, each of at least
    ``keys.ACC_SAMPLES``)."""
    return len(_accuracy_tail(obs, points)) * keys.ACC_SAMPLES


def explained_elsewhere(obs: Observations) -> str | None:
    """A setup that is wrong whatever happens and that stalls a training by itself: a stall
    it explains is not the harm of an advised-against setup (one root cause, one finding).
    """
    for m in obs.models:
        for p in m.params:
            if (p.ndim >= 2 and p.requires_grad and p.min is not None and p.max is not None
                    and p.numel >= 2 and p.max - p.min <= 1e-6 * (p.absmax or 0.0)):
                return f"{p.name} starts constant (point 17)"
    if never_zeroed(obs):
        return "the gradients are never zeroed"
    for call in obs.losses:
        if first_op(call.input_chain) in ("Softmax", "Sigmoid", "Relu", "Threshold") and \
                call.fn in ("cross_entropy", "binary_cross_entropy_with_logits", "nll_loss"):
            return "the loss is fed an activated output (point 4)"
    mixing = batch_mixing(obs)
    if mixing is not None and mixing["entropy_ratio"] < 0.5:
        return "the batches are grouped by label (points 6, 7)"
    return None


def stalled(obs: Observations) -> dict | None:
    """The training loss made (almost) no progress over the run and the training set is
    not fitted. None when the run is too short, fits its data, is a game of several
    optimizers (a GAN), whose losses measure no progress, or when a setup that is wrong
    whatever happens explains the stall."""
    if len(obs.optimizers) > 1 or explained_elsewhere(obs):
        return None
    shape = loss_shape(obs, PROGRESS_MIN_POINTS)
    if shape is None or shape.first <= 0:
        return None
    acc = train_accuracy(obs)
    if (acc is not None and acc >= FITTED_ACC) or shape.last <= FITTED_LOSS * shape.first:
        return None
    drop = 1 - shape.last / shape.first
    if drop < -STALL_DROP or diverged(shape):
        return None             # a loss that grows diverges (point 3 says so); it is no stall
    if drop >= STALL_DROP or accuracy_gain(obs) >= ACC_GAIN:
        return None             # the loss moves, or it moves slowly while accuracy climbs
    ev = {"first_loss": round(shape.first, 5), "last_loss": round(shape.last, 5),
          "loss_drop": round(drop, 4), "loss_points": len(shape.values)}
    if acc is not None:
        ev["train_accuracy"] = round(acc, 4)
    return ev


def progress_known(obs: Observations) -> bool:
    """The run has enough finite loss points to say whether it made progress."""
    return loss_shape(obs, PROGRESS_MIN_POINTS) is not None


def no_harm(obs: Observations) -> str:
    """The sentence for a run that shows no harm, true to what the run could show."""
    if progress_known(obs):
        return "The loss makes progress in this run, so no harm is shown"
    return "The run is too short (or its loss not finite) to show harm either way"


def accuracy_gain(obs: Observations) -> float:
    """How much the training accuracy (first quarter to last quarter of its points) or a
    held-out accuracy (first round to last) rose; 0 when not measured. A classifier whose
    accuracy climbs is learning, however slowly its cross-entropy falls."""
    gains = [0.0]
    acc = obs.timelines.get("train_acc")
    values = finite(acc.values) if acc is not None else []
    if len(values) >= 4:
        w = max(1, len(values) // 4)
        gains.append(statistics.fmean(values[-w:]) - statistics.fmean(values[:w]))
    for rs in rounds(obs).values():
        if len(rs) >= 2:
            gains.append(rs[-1]["acc"] - rs[0]["acc"])
    return max(gains)


def describe_stall(ev: dict) -> str:
    moved = (f"fell only {ev['loss_drop']:.0%}" if ev["loss_drop"] > 0.005 else "did not fall")
    return (f"the loss {moved} over {ev['loss_points']} points ({ev['first_loss']:.4g} -> "
            f"{ev['last_loss']:.4g})")


def overfits(obs: Observations) -> dict | None:
    """A held-out loss that rises after its minimum, or a train/held-out accuracy gap that
    grows over the rounds."""
    acc = train_accuracy(obs)
    for name, rs in rounds(obs).items():
        if len(rs) < MIN_ROUNDS:
            continue
        loss = [r["loss"] for r in rs]
        i = min(range(len(loss)), key=loss.__getitem__)
        end = statistics.fmean(loss[-2:])
        if i < len(loss) - 2 and end >= (1 + HELDOUT_RISE) * loss[i]:
            return {"heldout": name, "heldout_loss": [round(v, 5) for v in loss],
                    "min_round": i + 1,
                    "what": f"the loss on {name} rose from {loss[i]:.4g} to {loss[-1]:.4g}"}
        if acc is None:
            continue
        series = obs.timelines["train_acc"]
        gaps = []
        for r, step in zip(rs, _round_steps(obs, name)):
            near = [v for s, v in zip(series.steps, series.values) if s <= step]
            if near and isinstance(near[-1], float) and math.isfinite(near[-1]):
                gaps.append(statistics.fmean(finite(near[-5:])) - r["acc"])
        if len(gaps) >= MIN_ROUNDS and gaps[-1] >= GAP_END and gaps[-1] - gaps[0] >= GAP_GROWTH:
            return {"heldout": name, "accuracy_gap": [round(g, 4) for g in gaps],
                    "what": (f"the gap between training and {name} accuracy grew from "
                             f"{gaps[0]:.0%} to {gaps[-1]:.0%}")}
    return None


def _round_steps(obs: Observations, name: str) -> list[int]:
    s = obs.timelines.get(f"eval/{name}")
    return list(s.steps) if s is not None else []


def mode_gap(obs: Observations) -> dict | None:
    """Train-mode and eval-mode results far apart at the end of the run.

    ``direction`` "eval-worse": held-out accuracy in eval mode far below the training
    accuracy in train mode (BatchNorm's running statistics do not fit). "train-worse":
    the training accuracy in train mode far below the held-out accuracy in eval mode (what
    train mode adds, noisy batch statistics or dropout, costs the model more than it can
    take)."""
    acc = train_accuracy(obs)
    if acc is None:
        return None
    n = train_accuracy_samples(obs)
    for name, rs in rounds(obs).items():
        if not rs:
            continue
        held = rs[-1]["acc"]
        ev = {"heldout": name, "train_accuracy": round(acc, 4),
              "heldout_accuracy": round(held, 4)}
        # the gap, less one standard error of it: a gap at the threshold that a few more
        # samples could close is noise (both accuracies are estimates)
        se = math.sqrt(_variance(acc, n) + _variance(held, rs[-1].get("n", 0)))
        if acc - held - se >= EVAL_MODE_GAP:
            return {**ev, "direction": "eval-worse"}
        if held - acc - se >= TRAIN_MODE_GAP:
            return {**ev, "direction": "train-worse"}
    return None


def _variance(p: float, n: float) -> float:
    """The variance of an accuracy ``p`` measured on ``n`` samples (one success and one
    failure added: a measured 100% is not certain)."""
    if not n or n <= 0:
        return 0.0
    q = (p * n + 1) / (n + 2)
    return q * (1 - q) / (n + 2)
