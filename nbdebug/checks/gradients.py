"""Point 9 (exploding gradients) and the extra key "zero-grad" (gradients never zeroed)."""

from __future__ import annotations

import math
import statistics
from typing import Any

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_CHECKED, check, finding
from .timeline import column, columns, diverged, loss_shape, spikes

#: total gradient norm growing this many times over its early median is an explosion
EXPLODE = 100.0
#: growth that is reported even while the loss looks fine (and no clipping is in place)
EXPLODE_ALONE = 1e4
#: share of observed steps that start with leftover gradients: never zeroed
STALE_SHARE = 0.9
#: first steps whose median gradient norm is the baseline (the first one alone when the
#: gradients break down sooner)
BASE_STEPS = 5
#: observations of the leftover gradient needed before judging
STALE_MIN = 3
#: a norm this many times the early median ends the healthy steps a clip value comes from
GROWN = 10.0


def never_zeroed(obs: Observations) -> dict | None:
    """Evidence that an optimizer steps on the previous steps' gradients, or None (each
    optimizer is judged on the parameters it steps: "stale_grad", "stale_grad/1", ...)."""
    for key in sorted(k for k in obs.timelines if k.split("/")[0] == keys.STALE_GRAD):
        ev = _never_zeroed(obs, obs.timelines[key])
        if ev is not None:
            if "/" in key:
                ev["optimizer_index"] = int(key.split("/")[1])
            return ev
    return None


def _never_zeroed(obs: Observations, s: Any) -> dict | None:
    seen = [(st, v) for st, v in zip(s.steps, s.values) if st > 0 and isinstance(v, float)]
    if len(seen) < STALE_MIN:
        return None
    stale = [v for _, v in seen if v > 0 or not math.isfinite(v)]
    share = len(stale) / len(seen)
    if share < STALE_SHARE:
        return None
    return {"steps_with_leftover_gradient": len(stale), "steps_observed": len(seen),
            "share": round(share, 3), "zero_grad_calls": obs.dynamics.get("zero_grad_calls", 0),
            "leftover_norm_last": seen[-1][1]}


@check("zero-grad", point="zero-grad", phase="timeline", title="Gradients zeroed every step")
def zero_grad(obs: Observations) -> list[Finding] | str:
    """Gradients accumulate across steps because zero_grad is never called."""
    if not any(k.split("/")[0] == keys.STALE_GRAD for k in obs.timelines):
        return NOT_CHECKED
    ev = never_zeroed(obs)
    if ev is None:
        return []
    weights = [p for m in obs.models for p in m.params if p.ndim >= 2 and p.requires_grad]
    if weights and sum(p.in_optimizer for p in weights) < len(weights) / 2:
        return []              # the optimizer holds other parameters: "stuck" names that
    calls = ev["zero_grad_calls"]
    msg = (f"{ev['steps_with_leftover_gradient']} of {ev['steps_observed']} observed steps "
           "stepped on the gradients of the previous steps still in .grad "
           f"(zero_grad called {calls} time(s)): every step adds up all past gradients, so "
           "the updates grow and point in stale directions.")
    return [finding(
        severity="problem",
        title="Gradients never zeroed", message=msg,
        fix=("Call optimizer.zero_grad() once per step, before loss.backward() (or after "
             "optimizer.step())."),
        where=_optimizer_name(obs, ev.get("optimizer_index", 0)), evidence=ev, step=None)]


def _optimizer_name(obs: Observations, index: int) -> str | None:
    """The optimizer that stepped on old gradients, when there are several to tell apart."""
    if len(obs.optimizers) > 1 and 0 <= index < len(obs.optimizers):
        return obs.optimizers[index].name
    return None


def _totals(rows: list[list[float]]) -> list[float]:
    out = []
    for r in rows:
        vals = [v for v in r if isinstance(v, float) and not math.isnan(v)]
        out.append(math.sqrt(sum(v * v for v in vals)) if vals else math.nan)
    return out


@check("exploding-gradients", point=9, phase="timeline")
def exploding_gradients(obs: Observations) -> list[Finding] | str:
    """Gradient norms that grow by orders of magnitude; names the layer, the step and the
    clipping value that would have held them."""
    steps, cols, rows = columns(obs, "grad_norm")
    if not rows:
        return NOT_CHECKED
    clip = obs.dynamics.get("clip_calls", 0) > 0
    pre = obs.timelines.get("clip_total_norm")
    if clip and pre is not None and len(pre):
        totals, tsteps = [float(v) for v in pre.values], list(pre.steps)
    else:
        totals, tsteps = _totals(rows), steps
    pairs = list(zip(tsteps, totals))
    fin = [(st, v) for st, v in pairs if math.isfinite(v)]
    nonfinite = [(st, v) for st, v in pairs if not math.isfinite(v)]
    if len(fin) < 1 or (len(fin) < BASE_STEPS and not nonfinite):
        return NOT_CHECKED
    head = [v for _, v in fin[:BASE_STEPS]] if len(fin) > BASE_STEPS else [fin[0][1]]
    base = statistics.median(head)
    if base <= 0:
        return []
    peak_step, peak = max(fin, key=lambda t: t[1])
    growth = peak / base
    if growth < EXPLODE:
        return []
    if never_zeroed(obs):
        return []                      # accumulation, not explosion: "zero-grad" says it
    shape = loss_shape(obs)
    bad = bool(nonfinite) or (obs.nan is not None and obs.nan.phase in ("loss", "backward")) or (
        shape is not None and (diverged(shape) or bool(spikes(shape))))
    if not bad and (growth < EXPLODE_ALONE or clip):
        return []                      # clipping in place holds it, or no harm shown
    # the layer that grew most
    layer, layer_growth = None, 0.0
    w = len(head)
    for j, name in enumerate(cols):
        col = column(rows, j)
        if len(col) <= w:
            continue
        b = statistics.median(col[:w])
        g = max(col) / b if b > 0 else 0.0
        if g > layer_growth:
            layer, layer_growth = name, g
    healthy = healthy_norms(fin, base)
    max_norm = clip_value(healthy)
    evidence = {"early_median_norm": base, "peak_norm": peak, "growth": growth,
                "peak_step": peak_step, "layer": layer, "layer_growth": layer_growth,
                "clipping": clip, "suggested_max_norm": max_norm,
                "healthy_median_norm": statistics.median(healthy),
                "fix": {"max_norm": max_norm}}
    if clip:
        evidence["clip_max_norm"] = obs.dynamics.get("clip_max_norm")
    grown = "to Inf/NaN" if math.isinf(growth) else f"{growth:.3g}x"
    msg = (f"The total gradient norm grew {grown} over its early median ({base:.3g}), "
           f"peaking at step {peak_step}")
    msg += f"; {layer} grew most ({layer_growth:.3g}x)." if layer else "."
    if clip:
        msg += (f" Clipping is in place (max_norm {obs.dynamics.get('clip_max_norm')}), "
                "yet the training suffers: the norms before clipping keep exploding.")
    elif nonfinite:
        msg += f" The gradients became Inf/NaN at step {nonfinite[0][0]}."
    elif bad:
        msg += " The loss broke down with it."
    severity = "problem" if bad else "warning"
    types = {x.type for m in obs.models for x in m.modules}
    model = next((m.name for m in obs.models if m.training_forwards), "model")
    rnn = " A plain nn.RNN explodes easily: nn.LSTM / nn.GRU keep the gradients in check." \
        if "RNN" in types else ""
    return [finding(
        severity=severity,
        title="Exploding gradients", message=msg,
        fix=(f"torch.nn.utils.clip_grad_norm_({model}.parameters(), max_norm={max_norm:g}) "
             f"between loss.backward() and optimizer.step(): the norms before the explosion "
             f"stay below it (their median is {evidence['healthy_median_norm']:.3g}). "
             "If the loss still breaks down, lower the learning rate." + rnn),
        where=layer, evidence=evidence, step=peak_step)]


def healthy_norms(fin: list[tuple[int, float]], base: float) -> list[float]:
    """The finite total norms before the first one that grew GROWN times over the base."""
    out = []
    for _, v in fin:
        if v >= GROWN * base:
            break
        out.append(v)
    return out or [base]


def clip_value(healthy: list[float]) -> float:
    """A clip threshold the healthy steps stay below: their 90th percentile, rounded up to
    two significant figures, so it is never below their median."""
    p90 = sorted(healthy)[int(0.9 * (len(healthy) - 1))]
    value = float(f"{p90:.2g}")
    return value if value >= p90 else float(f"{p90 * 1.05:.2g}")
