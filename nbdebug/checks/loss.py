"""Checks of what feeds the loss: points 4 (activation on the logits) and 20 (KL divergence).

Both read what capture saw at the loss call: the autograd nodes that produced the loss's
input (so Sequential models, custom forwards and functional code look the same) and the
on-device range checks of ``capture/audits.py``.
"""

from __future__ import annotations

import re

from ..observations import LossCall, Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding

#: a log-probability is <= 0; allow float rounding above it
LOGPROB_TOL = 1e-4
#: |logsumexp| of a row of log-probabilities (or |sum - 1| of probabilities) above this
#: is not a normalised distribution (float32 rounding stays far below)
NORM_TOL = 1e-2
#: a KL divergence below this is negative, which a true KL can never be
NEGATIVE_KL = -1e-6

#: autograd nodes that only reshape or select: looked through
_PASS = {"View", "Reshape", "UnsafeView", "Unsqueeze", "Squeeze", "Permute", "Transpose", "T",
         "Clone", "Expand", "ToCopy", "Contiguous", "Select", "Slice", "Index", "AsStrided",
         "Alias", "Narrow", "Unbind", "Split", "SplitWithSizes", "Flatten"}
_SQUASH = {"Relu": "ReLU", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Hardtanh": "ReLU6/Hardtanh",
           "Threshold": "ReLU", "Softmax": "Softmax", "Softplus": "Softplus"}
_LOGITS_LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy_with_logits",
                  "binary_cross_entropy")


def first_op(chain: list[str]) -> str | None:
    """The first autograd op feeding a tensor that is not pure reshaping ("Softmax")."""
    for name in chain:
        base = re.sub(r"Backward\d*$", "", name)
        if base not in _PASS:
            return base
    return None


def _where(obs: Observations, op: str) -> str | None:
    for m in obs.models:
        if m.training_forwards and m.exec_order:
            last = m.exec_order[-1]
            kind = next((x.type for x in m.modules if x.name == last), "")
            if kind.lower().startswith(op.lower()[:4]):
                return f"{last} ({kind})"
    return None


def _finding(call: LossCall, op: str, title: str, message: str, fix: str,
             obs: Observations) -> Finding:
    return finding("problem", title=title, message=message, fix=fix, where=_where(obs, op),
                   evidence={"loss": call.fn, "input_chain": call.input_chain,
                             "input_min": call.input_min, "input_max": call.input_max})


@check("logits-activation", point=4, phase="setup")
def logits_activation(obs: Observations) -> list[Finding] | str:
    """ReLU/Sigmoid/Tanh/Softmax before a logits loss; NLLLoss not fed log-probabilities."""
    calls = [c for c in obs.losses if c.fn in _LOGITS_LOSSES]
    if not calls:
        return NOT_APPLICABLE if obs.losses else NOT_CHECKED
    out = []
    for c in calls:
        op = first_op(c.input_chain)
        if c.fn == "cross_entropy" and op in _SQUASH:
            double = op == "Softmax"
            out.append(_finding(
                c, op, "Double softmax" if double else f"{_SQUASH[op]} on the logits",
                (f"cross_entropy gets the output of a {_SQUASH[op]}: "
                 + ("it applies log_softmax itself, so the softmax runs twice and the "
                    "gradients nearly vanish." if double else
                    "the last layer must give raw logits; a squashing activation caps them, "
                    "so the loss cannot fall and training stalls.")),
                ("Remove the final activation: the last nn.Linear feeds "
                 "nn.CrossEntropyLoss directly; take torch.softmax(logits, 1) only to read "
                 "probabilities."), obs))
        elif c.fn == "binary_cross_entropy_with_logits" and op == "Sigmoid":
            out.append(_finding(
                c, op, "Double sigmoid",
                ("binary_cross_entropy_with_logits gets the output of a Sigmoid: it applies "
                 "the sigmoid itself, so the outputs live in (0.5, 0.73) and the gradients "
                 "are tiny."),
                "Drop the final nn.Sigmoid (keep BCEWithLogitsLoss), or keep it and use "
                "nn.BCELoss.", obs))
        elif c.fn == "nll_loss" and op != "LogSoftmax" and (
                (c.input_max is not None and c.input_max > LOGPROB_TOL) or op in _SQUASH):
            probs = op == "Softmax"
            out.append(_finding(
                c, op or "", "NLLLoss not given log-probabilities",
                ("nll_loss gets " + ("probabilities from a Softmax" if probs else
                                     f"values up to {c.input_max:.4g}") +
                 ": it expects log-probabilities (<= 0), so it just pushes the raw outputs "
                 "up without bound."),
                ("Feed it F.log_softmax(logits, dim=1) (nn.LogSoftmax as the last layer), or "
                 "use nn.CrossEntropyLoss on the raw logits."), obs))
    return out


@check("kl-div", point=20, phase="setup")
def kl_divergence(obs: Observations) -> list[Finding] | str:
    """KLDivLoss with inputs that are not log-probabilities, targets that are not
    distributions, a negative value, or reduction='mean'."""
    calls = [c for c in obs.losses if c.fn == "kl_div"]
    if not calls:
        return NOT_APPLICABLE if obs.trained else NOT_CHECKED
    out = []
    fix = ("loss = F.kl_div(F.log_softmax(student_logits / T, dim=1), "
           "F.softmax(teacher_logits / T, dim=1), reduction='batchmean') * T * T")
    for c in calls:
        e = c.extra
        ev = {k: e.get(k) for k in ("input_max", "input_lse_dev", "target_min", "target_max",
                                    "target_norm_dev", "loss_min", "log_target")
              if e.get(k) is not None}
        ev.update({"reduction": c.reduction, "input_chain": c.input_chain})
        reasons = []
        if e.get("input_max", 0.0) > LOGPROB_TOL:
            op = first_op(c.input_chain)
            reasons.append(f"its input has positive values (up to {e['input_max']:.4g}"
                           + (f", straight from a {op}" if op in _SQUASH else "")
                           + "): probabilities or scores, not log-probabilities")
        elif e.get("input_lse_dev", 0.0) > NORM_TOL:
            reasons.append("the rows of its input do not log-sum-exp to 0 (off by up to "
                           f"{e['input_lse_dev']:.3g}): not normalised log-probabilities")
        if e.get("log_target"):
            if e.get("target_norm_dev", 0.0) > NORM_TOL or e.get("target_max", 0.0) > LOGPROB_TOL:
                reasons.append("log_target=True but the target rows are not log-probabilities")
        elif e.get("target_min", 0.0) < -LOGPROB_TOL:
            reasons.append(f"its target has negative values (down to {e['target_min']:.4g}): "
                           "log-probabilities or scores where probabilities are expected "
                           "(pass log_target=True for log-probabilities)")
        elif e.get("target_norm_dev", 0.0) > NORM_TOL:
            reasons.append("the rows of its target do not sum to 1 (off by up to "
                           f"{e['target_norm_dev']:.3g}): not a distribution")
        if c.reduction != "none" and e.get("loss_min", 0.0) < NEGATIVE_KL:
            reasons.append(f"it returned a negative value ({e['loss_min']:.4g}), which a KL "
                           "divergence never is")
        if reasons:
            out.append(finding(
                severity="problem",
                title="KL divergence not given distributions",
                message="kl_div is misused: " + "; ".join(reasons) + ".",
                fix=fix, where=None, evidence=ev))
        if c.reduction == "mean":
            out.append(finding(
                severity="warning",
                title="KLDivLoss with reduction='mean'",
                message=("kl_div uses reduction='mean' (the default): it divides by the number "
                         "of elements, not by the batch size, so the value is not the KL "
                         "divergence and shrinks with the number of classes."),
                fix="nn.KLDivLoss(reduction='batchmean') / F.kl_div(..., reduction='batchmean')",
                where=None, evidence=ev))
    return out
