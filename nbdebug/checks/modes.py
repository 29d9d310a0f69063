"""Extra key "train-eval-mode": training in eval mode, or evaluating in train mode."""

from __future__ import annotations

from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding

#: layers whose behaviour depends on the mode
DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")
BATCHNORM = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm")


@check("train-eval-mode", point="train-eval-mode", phase="end",
       title="model.train() / model.eval() where they belong")
def train_eval_mode(obs: Observations) -> list[Finding] | str:
    """Steps taken with the model in eval mode, or held-out passes run in train mode, in a
    model with Dropout or BatchNorm."""
    if not obs.trained:
        return NOT_CHECKED
    mods = [m for model in obs.models for m in model.modules
            if m.type in BATCHNORM or (m.type in DROPOUT and m.attrs.get("p", 0) > 0)]
    if not mods:
        return NOT_APPLICABLE
    bn = [m.name for m in mods if m.type in BATCHNORM]
    drop = [m.name for m in mods if m.type in DROPOUT]
    d = obs.dynamics
    out = []
    steps, in_eval = d.get("steps_seen", 0), d.get("steps_in_eval_mode", 0)
    if in_eval:
        effect = []
        if bn:
            effect.append(f"BatchNorm ({bn[0]}) normalises with running statistics and "
                          "never updates them")
        if drop:
            effect.append(f"Dropout ({drop[0]}) is switched off")
        out.append(finding(
            severity="problem" if bn else "warning",
            title="Training in eval mode",
            message=(f"{in_eval} of {steps} optimizer steps ran with the model in eval mode "
                     f"(from step {d.get('first_eval_mode_step')}): {'; '.join(effect)}. "
                     "Usually model.eval() was called for validation and model.train() was "
                     "not called again."),
            fix="Call model.train() at the start of every training epoch.",
            where=obs.models[0].name if obs.models else None,
            evidence={"steps_in_eval_mode": in_eval, "steps": steps, "batchnorm": bn,
                      "dropout": drop}, step=d.get("first_eval_mode_step")))
    passes = d.get("eval_passes_in_train_mode", 0)
    if passes:
        effect = []
        if drop:
            effect.append("Dropout drops units at random, so the held-out metrics are "
                          "noisy and too low")
        if bn:
            effect.append("BatchNorm normalises with the held-out batch's own statistics and "
                          "updates its running statistics with held-out data")
        loaders = d.get("train_mode_loaders", [])
        out.append(finding(
            severity="warning",
            title="Evaluating in train mode",
            message=(f"{passes} held-out forward pass(es) under torch.no_grad() ran with the "
                     f"model in train mode{' on ' + ', '.join(loaders) if loaders else ''}: "
                     f"{'; '.join(effect)}."),
            fix=("Call model.eval() before the evaluation loop and model.train() after it."),
            where=loaders[0] if loaders else None,
            evidence={"eval_passes_in_train_mode": passes, "loaders": loaders,
                      "batchnorm": bn, "dropout": drop}))
    return out
