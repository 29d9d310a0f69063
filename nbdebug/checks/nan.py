"""Point 13: NaN / Inf, with the first module that produced it."""

from __future__ import annotations

from ..observations import Observations
from ..report import Finding
from .registry import NOT_CHECKED, check

_FIX = {
    "input": "The data itself holds NaN/Inf: clean it (torch.nan_to_num, drop rows) before "
             "training, and assert torch.isfinite(x).all() on a few batches.",
    "forward": "Look at what {where} computes: guard log/div/sqrt with an eps "
               "(torch.log(x + 1e-8), x / (y + 1e-8)), lower the learning rate, check the "
               "initialisation; torch.autograd.set_detect_anomaly(True) on one replayed batch "
               "names the operation.",
    "loss": "The loss function produced it from finite outputs: a log of 0 or a division by "
            "0 in the loss. Use the numerically stable form (F.cross_entropy on logits, "
            "F.log_softmax, torch.log(p + 1e-8)).",
    "backward": "The gradient overflowed while the forward was finite: clip gradients "
                "(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)), lower the "
                "learning rate, and avoid sqrt/pow of values near 0.",
}


#: what each operation's NaN usually means, and the guard that fixes it (eps = 1e-8: far
#: below the values a float32 model computes, far above float32's smallest normal number)
_OPS = {
    "log": ("log of {bad}", "torch.log(x.clamp_min(1e-8)) in place of torch.log(x) (or, "
            "for the log of a softmax or sigmoid, F.log_softmax / F.logsigmoid)"),
    "log2": ("log of {bad}", "torch.log2(x.clamp_min(1e-8)) in place of torch.log2(x)"),
    "log10": ("log of {bad}", "torch.log10(x.clamp_min(1e-8)) in place of torch.log10(x)"),
    "div": ("division by {bad}", "x / y.clamp_min(1e-8) for a denominator that cannot be "
            "negative (a norm, a count, a std), or x / torch.where(y.abs() < 1e-8, "
            "torch.full_like(y, 1e-8), y) for one that changes sign"),
    "reciprocal": ("reciprocal of {bad}", "1 / x.clamp_min(1e-8) in place of 1 / x"),
    "sqrt": ("square root of {bad}", "torch.sqrt(x.clamp_min(1e-8)) in place of "
             "torch.sqrt(x)"),
    "rsqrt": ("inverse square root of {bad}", "torch.rsqrt(x.clamp_min(1e-8))"),
    "pow": ("power of {bad}", "x.clamp_min(1e-8) ** p in place of x ** p for a fractional "
            "or negative power"),
    "exp": ("exp overflow (inputs up to {max:.3g})", "torch.exp(x.clamp_max(80.0)) (exp of "
            "more than ~88 overflows float32), or torch.logsumexp / F.log_softmax in place "
            "of a log of a sum of exps"),
}


def _bad_inputs(inp: dict) -> str:
    parts = []
    if inp.get("zeros"):
        parts.append(f"0 ({inp['zeros']} zero entries)")
    if inp.get("negatives"):
        parts.append(f"negative values ({inp['negatives']}, min {inp['min']:.3g})")
    return " and ".join(parts) or f"values in [{inp.get('min', 0):.3g}, {inp.get('max', 0):.3g}]"


def _replay_text(replay: dict, where: str | None = None) -> tuple[str, str | None]:
    """A sentence about the replay of the bad batch, and the guard that fixes it."""
    if not replay.get("replayed"):
        return "", None
    if replay.get("data_nonfinite"):
        return (f" The batch itself holds {replay['data_nonfinite']} non-finite value(s) of "
                f"{replay['data_elements']}: the NaN came from the data."), None
    op = replay.get("op")
    if not op:
        return (" Replaying the batch with finer checks did not reproduce it in the forward "
                "(the parameters had already changed, or it arose in the loss)."), None
    inputs = replay.get("inputs") or [{}]
    culprit = inputs[1] if op == "div" and len(inputs) > 1 else inputs[0]   # the divisor
    what, guard = _OPS.get(op, ("{op} on {bad}", None))
    text = what.format(bad=_bad_inputs(culprit), max=culprit.get("max", 0.0), op=op)
    module = replay.get("module")
    inside = f" in the forward of {module} itself" if module else ""
    passed = (f"; {where} only passed it on" if module and where and where != module
              else "")
    approx = "" if replay.get("exact") else (
        f" (replayed with the parameters of step {replay.get('params_from_step')})")
    return (f" Replaying that batch op by op{approx}: the first operation with finite "
            f"inputs and a non-finite output is {op}{inside}: {text}{passed}."), guard


@check("nan-origin", point=13, phase="step")
def nan_origin(obs: Observations) -> list[Finding] | str:
    """Non-finite values in the inputs, activations, loss or gradients."""
    if not obs.trained:
        return NOT_CHECKED
    ev = obs.nan
    if ev is None:
        return []
    where = ev.where
    what = {"input": "the input batch", "forward": f"the output of {where}",
            "loss": "the loss", "backward": f"the gradient of {where}"}[ev.phase]
    rank = f" on rank {ev.detail['rank']}" if "rank" in ev.detail else ""
    replay = ev.detail.get("replay", {})
    message = f"{ev.kind.upper()} first appeared at step {ev.step}{rank} in {what}."
    if ev.phase == "forward" and ev.detail.get("output_only"):
        message += (" On that step nbdebug guarded the model's output only (per-layer guards "
                    "run on sampled steps).")
    elif ev.phase == "forward" and not (replay.get("op") and replay.get("module")):
        before = ev.detail.get("last_finite_output")
        message += " It is the first module in execution order whose output was not finite"
        message += (f"; the module that ran before it, {before}, gave a finite output, so the "
                    f"NaN was made by {where} or by code in the forward between the two."
                    if before else ".")
    text, guard = _replay_text(replay, where)
    message += text
    op, module = replay.get("op"), replay.get("module")
    title = "NaN/Inf in training"
    evidence = {"phase": ev.phase, "kind": ev.kind, "step": ev.step}
    if op and guard:
        title = f"NaN/Inf made by {op}"
        evidence["operation"] = op
        inputs = replay.get("inputs") or [{}]
        culprit = inputs[1] if op == "div" and len(inputs) > 1 else inputs[0]
        evidence["operation input"] = _bad_inputs(culprit)
        if module:
            where = module             # the module whose own forward made it
    evidence.update(ev.detail)
    loss = obs.loss_values()
    finite = [v for v in loss[:ev.step] if isinstance(v, float)]
    if finite:
        evidence["last_finite_loss"] = finite[-1]
    fix = _FIX[ev.phase].format(where=where)
    if guard:                          # the operation is known: its guard, nothing to hunt
        place = f"In the forward of {module}, use" if module else "Use"
        fix = f"{place} {guard}."
    elif "data_nonfinite" in replay:
        fix = _FIX["input"]
    return [Finding(check="nan-origin", point=13, severity="problem",
                    title=title, message=message,
                    fix=fix, where=where, evidence=evidence, step=ev.step)]
