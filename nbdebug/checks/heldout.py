"""Held-out metrics: point 10 (labels), 11 (over-confidence), 19 (validation vs test).

nbdebug computes the held-out accuracy and loss itself, per evaluation round, from the
root model's outputs and the labels of each loader the cell evaluates on.
"""

from __future__ import annotations

import math
import statistics

from ..observations import Observations
from ..report import Finding
from .registry import NOT_CHECKED, check, finding
from .timeline import classes, finite, window

#: training accuracy this share of the way from chance to 100% fits the training set
#: (0.64 for 10 classes, 0.8 for 2): far beyond what chance-level held-out accuracy allows
FIT_SHARE = 0.6
PAIRING_FIX = ("Check how samples and labels are paired: the same index and the same "
               "permutation for both (shuffle X and y together), the label column, and a "
               "few (sample, label) pairs by eye")
#: the low-accuracy sign of point 10: training accuracy rising by this much over the run
#: and ending this far above the best held-out round (or 3 standard errors, if larger)
SLOW_RISE = 0.05
SLOW_GAP = 0.05
#: held-out accuracy within this of 1/C (or 3 standard errors, if larger) is chance
CHANCE_MARGIN = 0.1
#: held-out rounds needed before a trend in held-out loss is judged
MIN_ROUNDS = 4
#: the held-out loss must rise in this many of the last RISE_ROUNDS + 1 rounds
RISE_ROUNDS = 3
#: the held-out loss (mean of the last RISE_ROUNDS rounds) must end this share above its
#: minimum: noise between rounds is a few percent
RISE = 0.1
#: held-out accuracy (mean of the last rounds against the rounds around the minimum) may
#: drop this much and still "hold"
ACC_HOLD = 0.03
#: accuracy gap between two held-out loaders that is large
GAP = 0.15
#: mean standardised difference of the input features above which two loaders differ
SHIFT = 0.3


def rounds(obs: Observations) -> dict[str, list[dict]]:
    """Held-out rounds per evaluation loader (training loaders left out)."""
    train = {ld.name for ld in obs.loaders if ld.role == "train"}
    out = {}
    for key, s in obs.timelines.items():
        if key.startswith("eval/") and key[5:] not in train and len(s):
            out[key[5:]] = [v for v in s.values if isinstance(v, dict)]
    return out


def at_chance(rs: list[dict], c: int) -> bool:
    """The best held-out accuracy of these rounds stays within chance's margin."""
    p = 1.0 / c
    ceiling = p + max(CHANCE_MARGIN, 3 * math.sqrt(p * (1 - p) / max(rs[-1]["n"], 1.0)))
    return max(r["acc"] for r in rs) <= ceiling


#: a regression's training loss below this share of where it started has fit its targets
REG_FIT = 0.01
#: held-out MSE never below this share of the targets' variance: nothing carried over
REG_NO_GAIN = 0.9
#: training steps needed before a fit can be judged
REG_MIN_STEPS = 20


def _regression_mismatch(obs: Observations) -> list[Finding] | str:
    """Regression: training loss near 0 while no held-out loader beats predicting the mean."""
    train = {ld.name for ld in obs.loaders if ld.role == "train"}
    evals = {k[len("heldout_mse/"):]: [v for v in s.values if isinstance(v, dict)]
             for k, s in obs.timelines.items()
             if k.startswith("heldout_mse/") and k[len("heldout_mse/"):] not in train and len(s)}
    loss = finite(obs.loss_values())
    if not evals or len(loss) < REG_MIN_STEPS:
        return NOT_CHECKED
    first = statistics.fmean(loss[:max(3, len(loss) // 20)])
    last = statistics.fmean(loss[-max(3, len(loss) // 10):])
    if first <= 0 or last > REG_FIT * first:
        return []
    ratios = {name: min(r["mse"] / max(r["baseline"], 1e-12) for r in rs)
              for name, rs in evals.items()}
    if any(v < REG_NO_GAIN for v in ratios.values()):
        return []              # one held-out set does improve: the targets carry over
    return [finding(
        severity="problem",
        title="Targets do not match the samples",
        message=(f"The training loss fell to {last / first:.2%} of its start, but on "
                 f"{', '.join(ratios)} the squared error never beat predicting the mean "
                 f"(best {min(ratios.values()):.0%} of the targets' variance). Ordinary "
                 "overfitting first improves the held-out error; here the net memorised "
                 "targets that do not belong to their samples."),
        fix=("Check how samples and targets are paired: the same index and permutation for "
             "both, the target column, and a few (sample, target) pairs by eye."),
        where=next(iter(ratios)), evidence={
            "first_loss": first, "last_loss": last,
            "heldout_mse_over_variance": {k: round(v, 4) for k, v in ratios.items()}})]


@check("label-mismatch", point=10, phase="end")
def label_mismatch(obs: Observations) -> list[Finding] | str:
    """Training accuracy high while held-out accuracy stays at chance (classification), or
    training loss near 0 while the held-out error never beats the mean (regression)."""
    c = classes(obs)
    if c is None:
        return _regression_mismatch(obs)
    evals = rounds(obs)
    acc = obs.timelines.get("train_acc")
    if not evals or acc is None or len(acc) < 3 or c is None:
        return NOT_CHECKED
    tail = finite(acc.values[-window(len(acc)) // 2:] if len(acc) >= 10 else acc.values[-3:])
    if not tail:
        return NOT_CHECKED
    train_acc = statistics.fmean(tail)
    if train_acc < 1 / c + FIT_SHARE * (1 - 1 / c):
        return _slow_memorising(evals, c, finite(acc.values))
    out = []
    for name, rs in evals.items():
        if not at_chance(rs, c):
            return []          # one held-out set does learn: the labels carry over
    for name, rs in evals.items():
        best = max(r["acc"] for r in rs)
        out.append(finding(
            severity="problem",
            title="Labels do not match the samples",
            message=(f"Training accuracy reaches {train_acc:.0%} while the accuracy on {name} "
                     f"never leaves chance (best {best:.0%} over {len(rs)} round(s); chance "
                     f"is {1 / c:.0%} for {c} classes). Ordinary overfitting first improves "
                     "the held-out accuracy and then loses some of it; here the model learned "
                     "nothing that carries over, which is what happens when the training "
                     "labels are not the samples' labels (the net memorises them)."),
            fix=PAIRING_FIX + ".",
            where=name, evidence={"train_accuracy": round(train_acc, 4),
                                  "heldout_accuracy": [round(r["acc"], 4) for r in rs],
                                  "chance": round(1 / c, 4), "classes": c}))
    return out


def _slow_memorising(evals: dict[str, list[dict]], c: int,
                     acc: list[float]) -> list[Finding]:
    """The sign at low training accuracy: training accuracy rising clearly above chance
    and above every held-out round, while each held-out set stays at chance within its
    own noise (3 standard errors, no wider margin): memorisation, slowly, of labels that
    carry nothing over. A healthy slow training lifts its held-out accuracy along."""
    p = 1.0 / c
    if len(acc) < 8 or any(len(rs) < 2 for rs in evals.values()):
        return []
    q = max(2, len(acc) // 4)
    start, end = statistics.fmean(acc[:q]), statistics.fmean(acc[-q:])
    if end - start < SLOW_RISE:
        return []
    for name, rs in evals.items():
        best = max(r["acc"] for r in rs)
        se = math.sqrt(p * (1 - p) / max(rs[-1]["n"], 1.0))
        if best > p + 3 * se or end - best < max(SLOW_GAP, 3 * se):
            return []              # this held-out set learns, or the gap is noise
    name, rs = next(iter(evals.items()))
    best = max(r["acc"] for r in rs)
    return [finding(
        severity="warning",
        title="Labels do not match the samples",
        message=(f"Training accuracy climbs slowly from {start:.0%} to {end:.0%} while the "
                 f"accuracy on {name} stays at chance (best {best:.0%} over {len(rs)} "
                 f"rounds; chance is {p:.0%} for {c} classes). A slow but healthy training "
                 "lifts the held-out accuracy with the training one; here what the model "
                 "learns does not carry over: it is memorising labels that do not belong to "
                 "their samples."),
        fix=PAIRING_FIX + "; --preflight runs a label-permuted control.",
        where=name, evidence={"train_accuracy_start": round(start, 4),
                              "train_accuracy_end": round(end, 4),
                              "heldout_accuracy": [round(r["acc"], 4) for r in rs],
                              "chance": round(p, 4), "classes": c})]


@check("over-confidence", point=11, phase="end")
def over_confidence(obs: Observations) -> list[Finding] | str:
    """Held-out loss rising for several rounds while held-out accuracy rises or holds."""
    evals = {k: v for k, v in rounds(obs).items() if len(v) >= MIN_ROUNDS}
    if not evals:
        return NOT_CHECKED
    if isinstance(label_mismatch(obs), list) and label_mismatch(obs):
        return []              # one root cause, one finding: point 10 names it
    out = []
    for name, rs in evals.items():
        loss = [r["loss"] for r in rs]
        acc = [r["acc"] for r in rs]
        i = min(range(len(loss)), key=loss.__getitem__)
        if len(loss) - 1 - i < RISE_ROUNDS:
            continue
        deltas = [loss[k + 1] - loss[k] for k in range(len(loss) - 1 - RISE_ROUNDS - 1,
                                                        len(loss) - 1) if k >= i]
        end_loss = statistics.fmean(loss[-RISE_ROUNDS:])
        end_acc = statistics.fmean(acc[-RISE_ROUNDS:])
        at_min_acc = statistics.fmean(acc[max(0, i - 1):i + 2])
        if (sum(1 for d in deltas if d > 0) < RISE_ROUNDS or end_loss < (1 + RISE) * loss[i]
                or end_acc < at_min_acc - ACC_HOLD):
            continue
        r0, r1 = rs[i].get("round", i + 1), rs[-1].get("round", len(rs))
        out.append(finding(
            severity="warning",
            title="Held-out loss rises while accuracy holds",
            message=(f"On {name} the loss rose from {loss[i]:.4g} (round {r0}) to "
                     f"{loss[-1]:.4g} (round {r1}) while the accuracy went from {acc[i]:.1%} "
                     f"to {acc[-1]:.1%}: the model grows over-confident on the samples it "
                     "gets wrong, a form of overfitting."),
            fix=("Stop at the round with the lowest held-out loss (early stopping), add "
                 "weight decay / dropout / label smoothing (nn.CrossEntropyLoss("
                 "label_smoothing=0.1)), or get more data."),
            where=name, evidence={"rounds": [r.get("round") for r in rs],
                                  "loss": [round(v, 5) for v in loss],
                                  "accuracy": [round(v, 4) for v in acc],
                                  "min_loss_round": r0}))
    return out


def _shift(a: dict, b: dict) -> float | None:
    """Mean |standardised mean difference| over the features of two input summaries."""
    if a.get("features") != b.get("features"):
        return None
    smd = []
    for ma, mb, sa, sb in zip(a["mean"], b["mean"], a["std"], b["std"]):
        pooled = math.sqrt((sa * sa + sb * sb) / 2)
        if pooled > 1e-8:
            smd.append(abs(ma - mb) / pooled)
        elif abs(ma - mb) > 1e-8:
            smd.append(10.0)             # a constant feature that moved: clearly shifted
    return statistics.fmean(smd) if smd else None


@check("val-test-shift", point=19, phase="end")
def val_test_shift(obs: Observations) -> list[Finding] | str:
    """Two held-out loaders with a large accuracy gap and shifted input statistics."""
    evals = rounds(obs)
    names = [n for n in evals if n in obs.eval_inputs]
    if len(names) < 2:
        return NOT_CHECKED
    final = {n: evals[n][-1]["acc"] for n in names}
    out = []
    hi = max(names, key=final.__getitem__)
    for lo in names:
        gap = final[hi] - final[lo]
        if lo == hi or gap < GAP:
            continue
        shift = _shift(obs.eval_inputs[hi], obs.eval_inputs[lo])
        if shift is None or shift < SHIFT:
            continue
        out.append(finding(
            severity="warning",
            title="Held-out sets from different distributions",
            message=(f"Accuracy on {hi} is {final[hi]:.1%} but on {lo} only {final[lo]:.1%}, "
                     f"and their inputs differ (mean standardised difference {shift:.2f} per "
                     f"feature): {hi} looks drawn from the training distribution and {lo} "
                     f"from another one, so {hi} over-states how the model will do."),
            fix=(f"Build the validation split from the same distribution as {lo} (the data "
                 "the model will meet), or apply the same preprocessing to both; compare "
                 "per-feature means and stds of the two sets."),
            where=lo, evidence={"accuracy": {hi: round(final[hi], 4), lo: round(final[lo], 4)},
                                "mean_abs_smd": round(shift, 4), "gap": round(gap, 4)}))
    return out
