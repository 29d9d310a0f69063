"""Checks on the timelines recorded while the cell trains: "stuck"."""

from __future__ import annotations

import math
import statistics

from ..observations import Observations
from ..report import Finding
from .registry import NOT_CHECKED, check

#: steps needed before a flat loss can be told from a slow start
STUCK_MIN_STEPS = 30
#: a final window whose mean loss is above this share of the first window's made no progress
NO_PROGRESS = 0.98
#: relative spread (std / |mean|) of the final window below which the loss is flat
FLAT_SPREAD = 1e-4
#: median update ratio ||dw|| / ||w|| below which the parameters are not moving
FROZEN_UPDATE = 1e-7
#: gradient norm below which a parameter gets no gradient at all
ZERO_GRAD = 1e-12
#: a loss this close to zero has converged; it is not stuck
CONVERGED = 1e-6


def _finite(values: list) -> list[float]:
    return [v for v in values if isinstance(v, float) and math.isfinite(v)]


def _window_values(obs: Observations, key: str, since: int) -> list[float]:
    s = obs.timelines.get(key)
    if s is None:
        return []
    out: list[float] = []
    for step, row in zip(s.steps, s.values):
        if step >= since:
            out.extend(_finite(row if isinstance(row, list) else [row]))
    return out


@check("stuck", point="stuck", phase="timeline")
def stuck(obs: Observations) -> list[Finding] | str:
    """The loss stops improving while the parameters stop moving (or it is flat)."""
    series = obs.timelines.get("loss")
    if series is None or len(series) < STUCK_MIN_STEPS:
        return NOT_CHECKED
    steps, loss = series.steps, series.values
    n = len(loss)
    head = _finite(loss[: max(5, n // 10)])
    tail_start = n - max(10, n // 3)
    tail = _finite(loss[tail_start:])
    if len(head) < 3 or len(tail) < 5:
        return NOT_CHECKED            # non-finite losses: point 13's business
    first, last = statistics.fmean(head), statistics.fmean(tail)
    if abs(last) <= CONVERGED or last < NO_PROGRESS * first:
        return []
    spread = statistics.pstdev(tail) / (abs(last) + 1e-30)
    since = steps[tail_start]
    ratios = _window_values(obs, "update_ratio", since)
    grads = _window_values(obs, "grad_norm", since)
    median_ratio = statistics.median(ratios) if ratios else None
    max_grad = max(grads) if grads else None
    flat = spread < FLAT_SPREAD
    frozen = median_ratio is not None and median_ratio < FROZEN_UPDATE
    no_grad = max_grad is not None and max_grad < ZERO_GRAD
    if not (flat or frozen or no_grad):
        return []
    if no_grad:
        cause = ("the gradients are zero: dead ReLUs, saturated units or a loss with no "
                 "gradient path to the parameters")
        fix = ("Check that the loss is computed from the model's output with torch ops (not "
               ".item()/numpy/.detach()), and look for dead ReLUs (try LeakyReLU, a smaller "
               "learning rate, Kaiming init).")
    elif frozen:
        cause = ("the parameters do not change although they get gradients: learning rate 0 "
                 "or far too small, or the optimizer holds other parameters")
        fix = ("Build the optimizer from this model's parameters after the model cell "
               "(opt = torch.optim.Adam(model.parameters(), lr=1e-3)) and check the lr.")
    else:
        cause = "the loss no longer moves from batch to batch"
        fix = ("Look at the gradient norms and activations per layer: dead units or "
               "vanishing gradients; try a larger learning rate or a better init.")
    evidence = {"first_loss": first, "last_loss": last, "relative_spread": spread,
                "since_step": since, "steps": obs.steps}
    if median_ratio is not None:
        evidence["median_update_ratio"] = median_ratio
    if max_grad is not None:
        evidence["max_grad_norm"] = max_grad
    return [Finding(
        check="stuck", point="stuck", severity="problem", title="Training is stuck",
        message=(f"The loss stopped improving from step {since} on (mean {last:.4g} against "
                 f"{first:.4g} at the start): {cause}."),
        fix=fix, where=None, evidence=evidence, step=since)]
