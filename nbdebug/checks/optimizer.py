"""Checks of the optimizers: points 2 (weight decay on biases) and 8 (vanilla SGD), and
"optimizer-params" (model parameters no optimizer updates)."""

from __future__ import annotations

from typing import Any

import statistics

from ..observations import GroupInfo, Observations, OptimizerInfo
from ..report import Finding
from .harm import describe_stall, no_harm, stalled
from .lr import update_ratios
from .registry import NOT_CHECKED, check, finding

#: L2 decay added to the gradient (SGD, Adam, RMSprop ...): from this value on it visibly
#: shrinks biases (5e-4, the classic ImageNet SGD recipe, stays below)
COUPLED_WARN = 1e-3
#: coupled L2 from this value on pulls biases and norm scales towards 0 within an epoch
COUPLED_PROBLEM = 1e-2
#: decoupled decay (AdamW): the common 0.01 .. 0.1 is practice; above it, harm
DECOUPLED_WARN = 0.1
#: decoupled decay from this value on wipes biases out in ~1/lr steps
DECOUPLED_PROBLEM = 1.0
#: parameters named at most in a message
NAMED = 6
#: the momentum a fix for vanilla SGD adds
MOMENTUM = 0.9
#: median update ratio ||dw|| / ||w|| of a healthy step
HEALTHY_UPDATE = 1e-3
#: a fix raises the lr at most this many times
MAX_RAISE = 10.0


def _decoupled(opt: OptimizerInfo, g: GroupInfo) -> bool:
    return opt.type == "AdamW" or bool(g.extra.get("decoupled_weight_decay"))


def _names(names: list[str]) -> str:
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return ", ".join(names[:NAMED]) + more


@check("bias-decay", point=2, phase="setup")
def weight_decay_on_biases(obs: Observations) -> list[Finding] | str:
    """Param groups with weight_decay > 0 that hold 1-D parameters (biases, norm scales).

    Severity rule: decoupled decay (AdamW) up to 0.1 is common practice -> info; above it
    a warning, from 1.0 a problem. L2 through the gradient (SGD, Adam ...) below 1e-3 ->
    info, from 1e-3 a warning, from 1e-2 a problem.
    """
    if not obs.optimizers:
        return NOT_CHECKED
    out = []
    for opt in obs.optimizers:
        for g in opt.groups:
            one_d = [n for n, d in zip(g.params, g.param_ndims) if d <= 1]
            wd = g.weight_decay or 0.0
            if wd <= 0 or not one_d:
                continue
            decoupled = _decoupled(opt, g)
            if decoupled:
                severity = ("problem" if wd >= DECOUPLED_PROBLEM else
                            "warning" if wd > DECOUPLED_WARN else "info")
            else:
                severity = ("problem" if wd >= COUPLED_PROBLEM else
                            "warning" if wd >= COUPLED_WARN else "info")
            kind = "decoupled weight decay" if decoupled else "L2 weight decay"
            out.append(finding(
                severity=severity,
                title="Weight decay on biases and norm scales",
                message=(f"{opt.name} group {g.index} applies {kind} {wd:g} to {len(one_d)} "
                         f"1-D parameter(s) ({_names(one_d)}): " + (
                             "the article advises against decaying biases and norm scales; "
                             "at this strength the harm is small." if severity == "info" else
                             "decaying biases and norm scales shrinks what the model can "
                             "represent and causes underfitting.")),
                fix=("Put 1-D parameters in their own group without decay:\n"
                     "decay = [p for p in model.parameters() if p.ndim > 1]\n"
                     "no_decay = [p for p in model.parameters() if p.ndim <= 1]\n"
                     f"torch.optim.{opt.type}([{{'params': decay, 'weight_decay': {wd:g}}}, "
                     "{'params': no_decay, 'weight_decay': 0.0}], lr=...)"),
                where=f"{opt.name} group {g.index}",
                evidence={"weight_decay": wd, "decoupled": decoupled, "lr": g.lr,
                          "params": one_d[:20], "count": len(one_d)}))
    return out


@check("sgd-momentum", point=8, phase="setup")
def sgd_without_momentum(obs: Observations) -> list[Finding] | str:
    """SGD with momentum 0 and no Nesterov: advice (info) while the loss makes progress, a
    warning when the run stalls. The fix keeps the step size: momentum beta multiplies the
    step by 1 / (1 - beta), so the lr is scaled by (1 - beta); it is raised only as far as
    the run's own update ratios show the steps are too small."""
    if not obs.optimizers:
        return NOT_CHECKED
    out = []
    for opt in obs.optimizers:
        if opt.type != "SGD":
            continue
        plain = [g for g in opt.groups if not g.momentum and not g.nesterov]
        if not plain or plain[0].lr is None:
            continue
        harm = stalled(obs)
        raise_by = 1.0
        ratios = update_ratios(obs)
        med = statistics.median(ratios.values()) if ratios else None
        if harm and med is not None and 0 < med < HEALTHY_UPDATE:
            raise_by = float(f"{min(MAX_RAISE, HEALTHY_UPDATE / med):.2g}")
        lr = plain[0].lr
        new_lr = float(f"{lr * raise_by * (1 - MOMENTUM):.3g}")
        evidence: dict[str, Any] = {"momentum": 0.0, "lr": [g.lr for g in plain],
                    "groups": [g.index for g in plain],
                    "fix": {"momentum": MOMENTUM, "lr": new_lr,
                            "lr_scale": float(f"{raise_by * (1 - MOMENTUM):.3g}")}}
        if med is not None:
            evidence["median_update_ratio"] = float(f"{med:.3g}")
        why = (f"momentum {MOMENTUM:g} multiplies the step by 1/(1 - {MOMENTUM:g}) = "
               f"{1 / (1 - MOMENTUM):.0f}, so the lr is scaled by {1 - MOMENTUM:g} to keep it")
        if raise_by > 1:
            why += (f", and raised {raise_by:g}x because the weights move only {med:.2g} of "
                    "their norm per step (about 1e-3 is healthy)")
        groups = f"{len(plain)} of {len(opt.groups)} param group(s)"
        if harm:
            evidence.update(harm)
            severity, title = "warning", "Vanilla SGD, and the training stalls"
            message = (f"{opt.name} is SGD with momentum=0 in {groups}, and "
                       f"{describe_stall(harm)}: plain SGD crawls through plateaus and saddle "
                       "points.")
        else:
            severity, title = "info", "Vanilla SGD without momentum"
            message = (f"{opt.name} is SGD with momentum=0 in {groups}. {no_harm(obs)}; the "
                       "article advises momentum or Adam, which get through plateaus and "
                       "saddle points faster.")
        scale = (f" (scale every group's lr by {evidence['fix']['lr_scale']:g})"
                 if len(opt.groups) > 1 else "")
        out.append(finding(
            severity, title, message,
            fix=(f"torch.optim.SGD(params, lr={new_lr:g}, momentum={MOMENTUM:g}){scale}: {why}. "
                 "Or torch.optim.Adam(params, lr=1e-3)."),
            where=opt.name, evidence=evidence))
    return out


@check("optimizer-params", point="optimizer-params", phase="setup",
       title="Every trainable parameter is optimized")
def optimizer_params(obs: Observations) -> list[Finding] | str:
    """Model parameters missing from every optimizer; an optimizer holding another model's."""
    trained = [m for m in obs.models if m.training_forwards > 0]
    if not obs.optimizers or not trained:
        return NOT_CHECKED
    foreign = sum(o.foreign_params for o in obs.optimizers)
    out = []
    for m in trained:
        trainable = [p for p in m.params if p.requires_grad]
        missing = [p.name for p in trainable if not p.in_optimizer]
        if not trainable or not missing:
            continue
        evidence = {"missing": missing[:20], "missing_count": len(missing),
                    "trainable": len(trainable), "foreign_params": foreign,
                    "optimizers": [o.name for o in obs.optimizers]}
        opt_name = obs.optimizers[0].name
        if len(missing) == len(trainable):
            stale = foreign > 0
            out.append(finding(
                severity="problem",
                title=("The optimizer holds another instance of the model" if stale
                       else "No optimizer updates the model"),
                message=(f"None of the {len(trainable)} trainable parameters of {m.name} is in "
                         f"an optimizer, so {m.name} never changes. " + (
                             f"{opt_name} holds {foreign} parameter(s) of another object: "
                             "the model cell was probably re-run after the optimizer was "
                             "built." if stale else "")).strip(),
                fix=(f"Build the optimizer after the model, from this instance: {opt_name} = "
                     f"torch.optim.{obs.optimizers[0].type}({m.name}.parameters(), lr=...)."),
                where=m.name, evidence=evidence))
        else:
            out.append(finding(
                severity="warning",
                title="Some parameters are in no optimizer",
                message=(f"{len(missing)} of {len(trainable)} trainable parameters of {m.name} "
                         f"are in no optimizer ({_names(missing)}): they get gradients but "
                         "never change."),
                fix=(f"Pass all of them ({opt_name}.add_param_group({{'params': [...]}}) or "
                     f"build the optimizer from {m.name}.parameters()), or freeze them on "
                     "purpose with p.requires_grad_(False)."),
                where=m.name, evidence=evidence))
    return out
