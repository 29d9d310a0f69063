"""Checks on the timelines recorded while the cell trains: "stuck", with its cause named."""

from __future__ import annotations

import math
import statistics

from ..observations import Observations
from ..report import Finding
from .gradients import never_zeroed
from .loss import first_op
from .lr import lr_too_large, update_ratios
from .registry import NOT_CHECKED, check, finding
from .timeline import classes, column, columns, finite, loss_shape, lrs, params

#: steps needed before a flat loss can be told from a slow start
STUCK_MIN_STEPS = 30
#: relative spread (std / |mean|) of the final window below which the loss is flat
FLAT_SPREAD = 1e-4
#: median update ratio ||dw|| / ||w|| below which a weight is not moving at all
FROZEN_UPDATE = 1e-7
#: median update ratio below which the learning rate is far too small (1e-3 is healthy)
TINY_UPDATE = 1e-5
#: gradient norm below which a parameter gets no gradient at all
ZERO_GRAD = 1e-12
#: a loss this close to zero has converged; it is not stuck
CONVERGED = 1e-6
#: share of a ReLU layer's units silent over a whole window that kills the layer
DEAD_SHARE = 0.9
#: share of sigmoid/tanh outputs in the flat ends that saturates the layer
SATURATED_SHARE = 0.9
#: first layer's gradient norm below this share of the last layer's: vanishing
VANISH = 1e-4
#: the late part of the loss improves by less than this share: it stopped moving
LATE_PROGRESS = 0.02
#: sampled steps the causes of a stall are read from, at least (a plateau that begins
#: later, in the run's last few steps, is read over the last third)
MIN_CAUSE_SAMPLES = 2

_FIXES = {
    "no-gradient-path": ("Compute the loss from the model's output with torch operations; "
                         "no .item(), .numpy(), .detach() or scikit-learn metrics in the loss."),
    "frozen": ("Build the optimizer from this model's parameters after the model cell "
               "(opt = torch.optim.Adam(model.parameters(), lr=1e-3)); keep requires_grad "
               "on; remove .detach()/.data from the forward; check that lr > 0."),
    "zero-grad": "Call optimizer.zero_grad() once per step, before loss.backward().",
    "grads-zero": ("The gradients are zero when the optimizer steps: call zero_grad() before "
                   "loss.backward(), not between backward() and step()."),
    "lr-small": "Raise the learning rate 10-100x (Adam: 1e-3; SGD with momentum: 1e-2..1e-1).",
    "probabilities": ("The loss is fed probabilities: remove the final Softmax/Sigmoid and give "
                      "the raw logits to the loss (CrossEntropyLoss / BCEWithLogitsLoss apply "
                      "it themselves)."),
    "dead-relu": ("Dead ReLUs: lower the learning rate, use Kaiming init, LeakyReLU or a "
                  "BatchNorm before the ReLU."),
    "saturated": ("Saturated sigmoid/tanh units pass no gradient: standardise the inputs, "
                  "use a smaller init (Xavier), or ReLU-family activations."),
    "vanishing": ("Vanishing gradients: use ReLU activations, Kaiming init, BatchNorm or "
                  "residual connections; for RNNs use LSTM/GRU."),
    "flat": ("Look at the gradient norms and activations per layer; try a larger learning "
             "rate or a better init."),
}


def _tail_rows(obs: Observations, key: str, since: int) -> tuple[list[str], list[list[float]]]:
    steps, cols, rows = columns(obs, key)
    return cols, [r for s, r in zip(steps, rows) if s >= since]


def causes(obs: Observations, since: int) -> list[tuple[str, str, dict]]:
    """(cause id, sentence, evidence) for each cause found, most fundamental first."""
    out: list[tuple[str, str, dict]] = []
    info = params(obs)
    gcols, grows = _tail_rows(obs, "grad_norm", since)
    trainable = [p for p in info.values() if p.ndim >= 2]
    frozen = [p.name for p in trainable if not p.requires_grad or not p.in_optimizer]
    missing = [p.name for p in trainable if p.requires_grad and p.in_optimizer
               and p.name not in gcols] if gcols else []
    zero_lr = [g for g, (a, b) in lrs(obs).items() if b == 0]
    if zero_lr:
        out.append(("frozen", f"the learning rate is 0 ({', '.join(zero_lr)})",
                    {"zero_lr_groups": zero_lr}))
    if trainable and len(frozen) + len(missing) >= max(1, len(trainable) // 2):
        parts = []
        off = [p.name for p in trainable if not p.requires_grad]
        out_opt = [p.name for p in trainable if p.requires_grad and not p.in_optimizer]
        if off:
            parts.append(f"requires_grad is off for {', '.join(off[:3])}")
        if out_opt:
            parts.append(f"the optimizer does not hold {', '.join(out_opt[:3])} (was the "
                         "model re-created after the optimizer?)")
        if missing:
            parts.append(f"no gradient reaches {', '.join(missing[:3])} (a .detach() or "
                         ".data in the forward)")
        out.append(("frozen", "parameters never change: " + "; ".join(parts),
                    {"frozen": frozen[:10], "no_gradient": missing[:10]}))
    graph = obs.extra.get("loss_graph")
    if obs.backward_calls and not gcols and not out:
        out.append(("no-gradient-path", "the loss has no gradient path to the parameters "
                    "(no parameter ever got a gradient" + (
                        "; the tensor given to backward() was built outside autograd)"
                        if graph == [] else ")"), {"loss_graph": graph}))
        return out
    # causes with evidence in the activations come before causes read from call order:
    # a saturated softmax or dead ReLUs also leave zero gradients at the optimizer's step
    squashed = _probabilities_into_loss(obs)
    if squashed:
        out.append(squashed)
    dcols, drows = columns(obs, "dead_units")[1:]
    if drows:
        dead = {c: drows[-1][j] for j, c in enumerate(dcols)
                if isinstance(drows[-1][j], float) and drows[-1][j] >= DEAD_SHARE}
        if dead:
            name, share = max(dead.items(), key=lambda kv: kv[1])
            out.append(("dead-relu", f"dead ReLUs: {share:.0%} of the units of {name} gave 0 "
                        "for every sample over the last window", {"dead_share": dead}))
    sat = {}
    for key, s in obs.timelines.items():
        if key.startswith("saturated/"):
            tail = finite([v for st, v in zip(s.steps, s.values) if st >= since])
            if tail and statistics.fmean(tail) >= SATURATED_SHARE:
                sat[key[10:]] = round(statistics.fmean(tail), 4)
    if sat:
        name, share = max(sat.items(), key=lambda kv: kv[1])
        out.append(("saturated", f"saturated units: {share:.0%} of the outputs of {name} "
                    "sit in the flat ends of the curve", {"saturated_share": sat}))
    stale = never_zeroed(obs)
    if stale and not out:
        out.append(("zero-grad", "the gradients are never zeroed", stale))
    grads = [v for r in grows for v in finite(r)]
    if grads and max(grads) < ZERO_GRAD and not out:
        out.append(("grads-zero", "the gradients are zero when the optimizer steps",
                    {"max_grad_norm": max(grads)}))
    ratios = update_ratios(obs)
    if ratios and grads and max(grads) >= ZERO_GRAD and not any(c[0] == "frozen" for c in out):
        med = statistics.median(ratios.values())
        if med < FROZEN_UPDATE:
            out.append(("frozen", "the parameters do not change although they get gradients "
                        "(learning rate 0, or the optimizer steps other parameters)",
                        {"median_update_ratio": med, "lr": lrs(obs)}))
        elif med < TINY_UPDATE and not _too_large(obs):
            out.append(("lr-small", f"the learning rate is far too small: the weights move "
                        f"{med:.2g} of their norm per step (about 1e-3 is healthy)",
                        {"median_update_ratio": med, "lr": lrs(obs)}))
    wcols = [j for j, c in enumerate(gcols) if c in info and info[c].ndim >= 2]
    if len(wcols) >= 3:
        meds = [(gcols[j], statistics.median(column(grows, j) or [math.nan])) for j in wcols]
        first, last = meds[0], meds[-1]
        if last[1] > 0 and first[1] < VANISH * last[1]:
            out.append(("vanishing", f"vanishing gradients: {first[0]} gets {first[1]:.2g} "
                        f"against {last[1]:.2g} for {last[0]}", {"grad_norms": dict(meds)}))
    return out


def _samples_from(obs: Observations, step: int) -> int:
    """Sampled steps (full and light: each records the update's ratios) from ``step`` on."""
    s = obs.timelines.get("update_ratio")
    return 0 if s is None else sum(1 for st in s.steps if st >= step)


def _probabilities_into_loss(obs: Observations) -> tuple[str, str, dict] | None:
    """A Softmax/Sigmoid right before a loss that applies one itself (point 4's finding)."""
    for call in obs.losses:
        if call.fn not in ("cross_entropy", "binary_cross_entropy_with_logits", "nll_loss"):
            continue
        op = first_op(call.input_chain)
        if op in ("Softmax", "Sigmoid"):
            return ("probabilities", f"the loss ({call.fn}) is fed the output of a {op}: once "
                    f"the {op.lower()} saturates, its gradient vanishes",
                    {"loss_input": op, "loss": call.fn})
    return None


def _too_large(obs: Observations) -> bool:
    """Point 3 finds the lr too large: "far too small" would contradict it."""
    out = lr_too_large(obs)
    return isinstance(out, list) and bool(out)


def _plateau_start(steps: list[int], values: list[float], best: float, level: float) -> int:
    """The step where the loss left its best level for the stuck one: the first value after
    the last one below the midpoint between the two."""
    mid = (best + level) / 2
    last_good = max((i for i, v in enumerate(values) if v < mid), default=-1)
    return steps[min(last_good + 1, len(steps) - 1)]


@check("stuck", point="stuck", phase="timeline")
def stuck(obs: Observations) -> list[Finding] | str:
    """The loss stops improving, with its cause named (dead ReLUs, vanishing gradients, tiny
    lr, frozen parameters, gradients never zeroed, no gradient path, saturated units)."""
    shape = loss_shape(obs, STUCK_MIN_STEPS)
    if shape is None:
        return NOT_CHECKED
    if abs(shape.last) <= CONVERGED:
        return []
    n = len(shape.values)
    mid = shape.values[n // 3: 2 * n // 3]
    late_stall = bool(mid) and shape.last >= (1 - LATE_PROGRESS) * statistics.fmean(mid)
    flat = shape.spread < FLAT_SPREAD
    acc = obs.timelines.get("train_acc")
    fitted = acc is not None and len(acc) >= 3 and statistics.fmean(
        finite(acc.values[-3:]) or [0.0]) >= 0.9
    if not (shape.no_progress or late_stall or flat) or fitted:
        return []
    improved = shape.best < (1 - LATE_PROGRESS) * shape.first
    since = (_plateau_start(shape.steps, shape.values, shape.best, shape.last) if improved
             else shape.steps[0])
    last_third = shape.steps[2 * n // 3]
    start = max(since, last_third) if improved else last_third
    if _samples_from(obs, start) < MIN_CAUSE_SAMPLES:
        start = last_third               # a plateau too late to hold samples: the last third
    found = causes(obs, start)
    if not found and not (shape.no_progress and flat):
        return []
    if not shape.no_progress and (not found or found[0][0] == "zero-grad"):
        return []              # a stall that still improves: "zero-grad" alone says it
    c = classes(obs)
    evidence = {"first_loss": shape.first, "last_loss": shape.last,
                "relative_spread": shape.spread, "since_step": since, "steps": obs.steps,
                "causes": [f[0] for f in found]}
    if c:
        evidence["ln_C"] = round(math.log(c), 4)
    for _, _, ev in found:
        evidence.update(ev)
    if found:
        cause = "; ".join(f[1] for f in found[:2])
        fix = _FIXES[found[0][0]]
    else:
        cause = "the loss no longer moves from batch to batch"
        fix = _FIXES["flat"]
    when = (f"stopped improving from step {since} on (best window {shape.best:.4g})"
            if improved else "never improved")
    return [finding(
        severity="problem", title="Training is stuck",
        message=(f"The loss {when} (mean {shape.last:.4g} at the end against "
                 f"{shape.first:.4g} at the start). Cause: {cause}."),
        fix=fix, where=None, evidence=evidence, step=since)]
