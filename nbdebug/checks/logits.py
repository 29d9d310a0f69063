"""Point 1: huge logits at the model's output, and a loss that collapses to 0 at once."""

from __future__ import annotations

from typing import Any

import math

from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding
from .shared import once
from .timeline import classes, columns, finite, params

#: |logit| above this saturates softmax (a gap of ~20 already gives p > 1 - 1e-9);
#: a default-initialised model starts with logits of a few units
HUGE_LOGITS = 50.0
#: a first loss this many times ln(C) means confidently wrong predictions at init
INIT_LOSS_FACTOR = 3.0
#: a classification loss below this within the first steps has "collapsed to 0"
COLLAPSED = 1e-3
#: steps (at least) within which a collapse counts as "at once"
COLLAPSE_STEPS = 20
#: weight std * sqrt(fan_in) above this is far above Kaiming (1.41) and PyTorch's default
#: (0.58): the init makes activations grow layer after layer
INIT_SCALE_HIGH = 5.0


def _init_scale(obs: Observations) -> dict[str, float]:
    out = {}
    for p in params(obs).values():
        if p.ndim < 2 or p.std is None:
            continue
        fan_in = p.numel // p.shape[0]
        scale = p.std * math.sqrt(fan_in)
        if scale > INIT_SCALE_HIGH:
            out[p.name] = round(scale, 3)
    return out


def saturated_softmax(obs: Observations) -> bool:
    """Point 1's condition holds (other checks defer to it: one root cause, one finding)."""
    out = once(("huge_logits", id(obs)), lambda: huge_logits(obs))
    return isinstance(out, list) and bool(out)


@check("huge-logits", point=1, phase="timeline")
def huge_logits(obs: Observations) -> list[Finding] | str:
    """Logits so large that softmax saturates: a first loss far above ln(C) or a loss that
    collapses to 0 within a few steps."""
    if not obs.trained:
        return NOT_CHECKED
    c = classes(obs)
    if c is None:
        return NOT_APPLICABLE
    steps, cols, rows = columns(obs, "output")
    loss = obs.timelines.get("loss")
    if not rows or loss is None or not len(loss) or "absmax" not in cols:
        return NOT_CHECKED
    at = {name: j for j, name in enumerate(cols)}
    absmax = [(s, r[at["absmax"]], r[at["std"]]) for s, r in zip(steps, rows)
              if math.isfinite(r[at["absmax"]])]
    if not absmax:
        return NOT_CHECKED
    ln_c = math.log(c)
    first_loss = finite(loss.values[:1])
    horizon = max(COLLAPSE_STEPS, obs.steps // 10)
    early = [(s, v) for s, v in zip(loss.steps, loss.values)
             if s <= horizon and isinstance(v, float) and math.isfinite(v)]
    collapse = next(((s, v) for s, v in early if v < COLLAPSED), None)
    peak_step, peak, peak_std = max((a for a in absmax if a[0] <= horizon),
                                    key=lambda a: a[1], default=absmax[0])
    huge = peak >= HUGE_LOGITS
    high_start = bool(first_loss) and first_loss[0] >= INIT_LOSS_FACTOR * ln_c
    if not huge or not (high_start or collapse):
        return []
    init = _init_scale(obs)
    evidence: dict[str, Any] = {"classes": c, "ln_C": round(ln_c, 4), "logit_absmax": peak,
                "logit_std": peak_std, "at_step": peak_step,
                "first_loss": first_loss[0] if first_loss else None}
    if collapse:
        evidence["collapsed_at_step"], evidence["collapsed_loss"] = collapse
        what = (f"the loss fell to {collapse[1]:.2g} by step {collapse[0]} while the logits "
                f"reached |{peak:.3g}|: softmax is saturated, so the loss says nothing and the "
                "gradients vanish")
    else:
        what = (f"the first loss is {first_loss[0]:.4g}, {first_loss[0] / ln_c:.0f}x ln({c}) = "
                f"{ln_c:.3g} (the loss of a uniform guess), with logits up to |{peak:.3g}| "
                f"(std {peak_std:.3g})")
    cause = ""
    if init:
        evidence["init_scale"] = init
        name, scale = max(init.items(), key=lambda kv: kv[1])
        cause = (f" The initialisation is the cause: {name} has std*sqrt(fan_in) = {scale:g} "
                 f"where Kaiming gives 1.41.")
    return [finding(
        severity="problem",
        title="Huge logits: softmax saturated",
        message=f"At the model's output {what}.{cause}",
        fix=("Initialise with nn.init.kaiming_normal_(w, nonlinearity='relu') or "
             "nn.init.xavier_uniform_(w) (or keep PyTorch's default init); the loss at the "
             f"first step should be close to ln({c}) = {ln_c:.3g}."),
        where=None, evidence=evidence, step=peak_step)]
