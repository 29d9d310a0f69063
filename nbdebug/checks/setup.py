"""Checks of the set-up, readable from the first steps: points 6, 8 and 17."""

from __future__ import annotations

import math

from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check

#: a weight tensor whose range is below this share of its magnitude is one constant
CONSTANT_SPREAD = 1e-6
#: batches whose label entropy is below this share of a well-mixed batch's are grouped
GROUPED_ENTROPY_RATIO = 0.5
#: label histograms needed before judging the order of the batches
MIN_LABEL_BATCHES = 5


@check("zero-init", point=17, phase="setup")
def zero_init(obs: Observations) -> list[Finding] | str:
    """Weight tensors (2-D and more) that are all zero or one constant at the first step."""
    weights = [p for m in obs.models for p in m.params
               if p.ndim >= 2 and p.requires_grad and p.min is not None]
    if not weights:
        return NOT_CHECKED if not obs.models else NOT_APPLICABLE
    out = []
    for p in weights:
        if p.numel < 2 or p.max - p.min > CONSTANT_SPREAD * (p.absmax or 0.0):
            continue
        zero = p.absmax == 0.0
        value = "0" if zero else f"{p.mean:.4g}"
        out.append(Finding(
            check="zero-init", point=17, severity="problem",
            title="Weights initialised to a constant",
            message=(f"{p.name} {list(p.shape)} is {'all zero' if zero else 'constant'} "
                     f"(every entry = {value}) at the first step: every unit gets the same "
                     "gradient, so the units never become different."),
            fix=("Use the default init or nn.init.kaiming_uniform_(w, nonlinearity='relu') / "
                 "nn.init.xavier_uniform_(w); only biases may start at zero."),
            where=p.name, evidence={"std": p.std, "min": p.min, "max": p.max,
                                    "shape": list(p.shape)}))
    return out


@check("sgd-momentum", point=8, phase="setup")
def sgd_without_momentum(obs: Observations) -> list[Finding] | str:
    """SGD with momentum 0 and no Nesterov."""
    if not obs.optimizers:
        return NOT_CHECKED
    out = []
    for opt in obs.optimizers:
        if opt.type != "SGD":
            continue
        plain = [g for g in opt.groups if not g.momentum and not g.nesterov]
        if not plain:
            continue
        out.append(Finding(
            check="sgd-momentum", point=8, severity="warning",
            title="Vanilla SGD without momentum",
            message=(f"{opt.name} is SGD with momentum=0 in {len(plain)} of {len(opt.groups)} "
                     "param group(s): plain SGD crawls through plateaus and saddle points."),
            fix=(f"torch.optim.SGD(params, lr={plain[0].lr:g}, momentum=0.9) or "
                 "torch.optim.Adam(params, lr=1e-3)."),
            where=opt.name, evidence={"momentum": 0.0, "lr": [g.lr for g in plain],
                                      "groups": [g.index for g in plain]}))
    return out


def batch_mixing(obs: Observations) -> dict[str, float] | None:
    """How mixed the training batches' labels are, from the label histograms.

    Returns the mean batch label entropy as a share of a well-mixed batch's (the lower of
    the data's label entropy and ln(batch size)), and the share of single-class batches.
    """
    series = obs.timelines.get("labels")
    if series is None or len(series) < MIN_LABEL_BATCHES:
        return None
    rows = [r for r in series.values if sum(r) > 0]
    if len(rows) < MIN_LABEL_BATCHES:
        return None
    total = [sum(col) for col in zip(*rows)]
    data_h = _entropy(total)
    batch_h = [_entropy(r) for r in rows]
    batch_n = sum(sum(r) for r in rows) / len(rows)
    ref = min(data_h, math.log(max(batch_n, 1.0)))
    if ref <= 0:
        return None
    single = sum(1 for r in rows if sum(1 for v in r if v > 0) == 1) / len(rows)
    return {"entropy_ratio": (sum(batch_h) / len(batch_h)) / ref, "single_class_share": single,
            "label_batches": float(len(rows)), "classes_seen": float(sum(1 for v in total if v))}


def _entropy(counts: list[float]) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts if c > 0) if n else 0.0


@check("shuffle", point=6, phase="setup")
def not_shuffled(obs: Observations) -> list[Finding] | str:
    """The training loader reads the data in a fixed order."""
    train = obs.train_loaders
    if not train:
        return NOT_CHECKED
    out = []
    mixing = batch_mixing(obs)
    for ld in train:
        if ld.shuffled is not False:
            continue
        grouped = mixing is not None and mixing["entropy_ratio"] < GROUPED_ENTROPY_RATIO
        evidence = {"sampler": ld.sampler, "epochs": ld.epochs, "batches": ld.batches}
        if mixing is not None:
            evidence.update({k: round(v, 4) for k, v in mixing.items()})
        if grouped:
            out.append(Finding(
                check="shuffle", point=6, severity="problem",
                title="Training data not shuffled, and grouped by label",
                message=(f"{ld.name} uses a {ld.sampler} and its batches come grouped by "
                         f"label (batch label entropy {mixing['entropy_ratio']:.0%} of a mixed "
                         "batch's): the model learns the order, not the task."),
                fix=f"DataLoader(dataset, batch_size={ld.batch_size}, shuffle=True)",
                where=ld.name, evidence=evidence))
        else:
            out.append(Finding(
                check="shuffle", point=6, severity="info",
                title="Training data read in a fixed order",
                message=(f"{ld.name} uses a {ld.sampler}: every epoch sees the batches in the "
                         "same order. The labels look well mixed, so no harm is shown, but "
                         "the article advises shuffling every epoch."),
                fix=f"DataLoader(dataset, batch_size={ld.batch_size}, shuffle=True)",
                where=ld.name, evidence=evidence))
    return out
