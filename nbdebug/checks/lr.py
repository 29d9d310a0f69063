"""Point 3: a learning rate too large (divergence, spikes, oscillation without progress)."""

from __future__ import annotations

from typing import Any

from ..observations import Observations
from ..report import Finding
from .gradients import never_zeroed
from .logits import saturated_softmax
from .registry import NOT_CHECKED, check, finding
from .shared import once
from .timeline import BIG_SPIKE, column, columns, diverged, loss_shape, lrs, spikes, weight_columns
from .timeline import median as _median

#: median update ratio ||dw||/||w|| per step above this is large (about 1e-3 is healthy);
#: it condemns the lr only together with a bad loss curve
HIGH_UPDATE = 1e-2
#: tail spread (std / mean) above this with no progress is an oscillation
OSCILLATION = 0.2
#: finite loss values needed (a run that blows up to NaN may leave only a few)
MIN_POINTS = 5
#: spikes of 10x needed (without one of 100x) before spikes alone are reported
MANY_SPIKES = 3
#: the update ratio ||dw|| / ||w|| of a healthy step: a suggested lr scales towards it
HEALTHY_UPDATE = 1e-3
#: a suggested lr is 3x to 100x lower than the current one (10x without update ratios)
MAX_SCALE = 1 / 3
MIN_SCALE = 1 / 100
DEFAULT_SCALE = 1 / 10


def _group_of(obs: Observations, param: str) -> str | None:
    for opt in obs.optimizers:
        for g in opt.groups:
            if param in g.params:
                return f"{opt.name} group {g.index}"
    return None


def update_ratios(obs: Observations) -> dict[str, float]:
    """Median update ratio of each weight tensor (once for all the checks)."""
    return once(("update_ratios", id(obs)), lambda: _update_ratios(obs))


def _update_ratios(obs: Observations) -> dict[str, float]:
    _, cols, rows = columns(obs, "update_ratio")
    out = {}
    for j in weight_columns(obs, cols):
        m = _median(column(rows, j))
        if m is not None:
            out[cols[j]] = m
    return out


@check("lr-too-large", point=3, phase="timeline")
def lr_too_large(obs: Observations) -> list[Finding] | str:
    """The loss diverges, spikes by orders of magnitude or oscillates without progress,
    with large update ratios."""
    shape = loss_shape(obs, min_points=MIN_POINTS)
    if shape is None:
        return NOT_CHECKED
    if never_zeroed(obs) or saturated_softmax(obs):
        return []                # one root cause, one finding: "zero-grad" / point 1 name it
    jumps = spikes(shape)
    big = [s for s in jumps if s[2] >= BIG_SPIKE]
    nan = obs.nan
    blown = nan is not None and nan.phase != "input" and max(
        shape.values) >= BIG_SPIKE * max(shape.values[0], 1e-12)
    if blown and nan is not None:
        what = (f"the loss grows by orders of magnitude ({shape.values[0]:.3g} -> "
                f"{max(shape.values):.3g}) and then becomes {nan.kind} at step "
                f"{nan.step}")
    elif diverged(shape):
        what = (f"the loss diverges: it ends at {shape.last:.4g} (mean of the last window) "
                f"against {shape.best:.4g} at its best")
    elif big:
        s = big[0]
        what = (f"the loss jumps by orders of magnitude: {s[1]:.4g} at step {s[0]}, "
                f"{s[2]:.0f}x the steps before ({len(jumps)} spike(s) in all)")
    elif len(jumps) >= MANY_SPIKES and shape.no_progress:
        what = f"the loss spikes {len(jumps)} times (10x or more) and makes no progress"
    elif (shape.no_progress and shape.spread >= OSCILLATION
            and _largest(update_ratios(obs))[1]):
        what = (f"the loss oscillates without progress (spread {shape.spread:.0%} of its mean, "
                f"{shape.last:.4g} at the end against {shape.first:.4g} at the start)")
    else:
        return []                   # (the update ratios are read only when a loss shows harm)
    ratios = update_ratios(obs)
    worst, high = _largest(ratios)
    evidence: dict[str, Any] = {"first_loss": shape.first, "last_loss": shape.last, "best_loss": shape.best,
                "spikes": [list(s) for s in jumps[:5]], "lr": lrs(obs)}
    where = None
    lr = None
    msg = f"{what[0].upper()}{what[1:]}."
    if worst is not None:
        evidence["update_ratio"] = {k: float(f"{v:.3g}") for k, v in ratios.items()}
        group = _group_of(obs, worst[0])
        lr = evidence["lr"].get(group or "", None)
        where = group or worst[0]
        msg += (f" The update of {worst[0]} is {worst[1]:.2g} of its norm per step (median; "
                f"about 1e-3 is healthy)")
        msg += f" with lr {lr[-1]:g} ({group})." if lr else "."
        if lr and lr[-1] > lr[0]:
            msg += f" The scheduler raised the lr from {lr[0]:g} to {lr[-1]:g}."
    severity = "problem" if (high or worst is None or big or blown or diverged(shape)) \
        else "warning"
    current = lr[-1] if where and lr else None
    scale = (max(MIN_SCALE, min(MAX_SCALE, HEALTHY_UPDATE / worst[1]))
             if worst is not None and worst[1] > 0 else DEFAULT_SCALE)
    if current:
        new_lr = float(f"{current * scale:.2g}")
        evidence["fix"] = {"lr": new_lr}
        fix = (f"Lower the learning rate of {where} from {current:g} to {new_lr:g} "
               + (f"(from its update ratio {worst[1]:.2g} per step towards the healthy 1e-3, "
                  "3x to 100x lower)" if worst is not None else "(10x lower)")
               + ", or add a warm-up; if the gradient norm explodes, clip it (point 9).")
    else:
        fix = ("Lower the learning rate 10x (Adam: start at 1e-3 .. 1e-4), or add a warm-up; "
               "if the gradient norm explodes, clip it (point 9).")
    return [finding(
        severity, "Learning rate too large", msg, fix=fix,
        where=where, evidence=evidence, step=(big[0][0] if big else shape.tail_start))]


def _largest(ratios: dict[str, float]) -> tuple[tuple[str, float] | None, bool]:
    """The parameter with the largest update ratio, and whether that ratio is high."""
    worst = max(ratios.items(), key=lambda kv: kv[1], default=None)
    return worst, worst is not None and worst[1] >= HIGH_UPDATE
