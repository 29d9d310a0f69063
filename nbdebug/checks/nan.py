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
    message = f"{ev.kind.upper()} first appeared at step {ev.step}{rank} in {what}."
    if ev.phase == "forward":
        before = ev.detail.get("last_finite_output")
        message += " It is the first module in execution order whose output was not finite"
        message += (f"; the module that ran before it, {before}, gave a finite output, so the "
                    f"NaN was made by {where} or by code in the forward between the two."
                    if before else ".")
    evidence = {"phase": ev.phase, "kind": ev.kind, "step": ev.step, **ev.detail}
    loss = obs.loss_values()
    finite = [v for v in loss[:ev.step] if isinstance(v, float)]
    if finite:
        evidence["last_finite_loss"] = finite[-1]
    return [Finding(check="nan-origin", point=13, severity="problem",
                    title="NaN/Inf in training", message=message,
                    fix=_FIX[ev.phase].format(where=where), where=where, evidence=evidence,
                    step=ev.step)]
