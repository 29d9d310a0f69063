"""Checks of the training data: points 5 (input ranges), 6 (shuffling), 7 (mixed labels)
and 16 (batch size)."""

from __future__ import annotations

import statistics

from ..observations import Observations
from ..report import Finding
from .mixing import batch_mixing, repeat_period, same_batch
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding

#: batches whose label entropy is below this share of random batches' are grouped by label
GROUPED_ENTROPY_RATIO = 0.5
#: grouped batches whose top label changes between fewer than this share of consecutive
#: batches arrive sorted by label
SORTED_CHANGES = 0.5
#: single-class batches in at least this share of the batches ...
SINGLE_SHARE = 0.5
#: ... and this much more often than random batches would give, are a problem
SINGLE_MARGIN = 0.3
#: a feature whose spread is this many times the median feature's is on another scale
SCALE_RATIO = 100.0
#: a feature whose |mean| is this many standard deviations from 0 ...
OFF_CENTER = 10.0
#: ... and whose whole range lies this many range widths away from 0 is far from centred
#: (sparse features, e.g. rarely lit pixels, have a large |mean|/std but touch 0)
OFF_CENTER_RANGES = 2.0
#: a network's first layer expects O(1) inputs; a feature spread this wide is raw
LARGE_STD = 100.0
#: a std below this share of a feature's magnitude is float rounding: the feature is constant
CONSTANT_REL = 1e-5
#: inputs in [0, max] with max above this (and at most 255) look like raw 8-bit pixels
RAW_PIXEL_MAX = 25.0
#: a flat input needs this many features to be taken for an image
RAW_PIXEL_FEATURES = 64
#: a batch holding a quarter of the data set or more (<= 4 steps an epoch) is large (point 16)
LARGE_BATCH_SHARE = 0.25
_SHUFFLE_FIX = "DataLoader(dataset, batch_size={bs}, shuffle=True)"


def _round(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


@check("shuffle", point=6, phase="setup")
def not_shuffled(obs: Observations) -> list[Finding] | str:
    """The training data comes in a fixed order (sampler, repeated epochs) or sorted by label."""
    train = obs.train_loaders
    period = repeat_period(obs)
    mixing = batch_mixing(obs)
    if not train and period is None and mixing is None:
        return NOT_CHECKED
    grouped = mixing is not None and mixing["entropy_ratio"] < GROUPED_ENTROPY_RATIO
    mix: dict[str, float] = mixing or {}
    evidence = _round(mixing) if mixing else {}
    out = []
    for ld in train:
        if ld.shuffled is not False:
            continue
        ev = {"sampler": ld.sampler, "epochs": ld.epochs, "batches": ld.batches, **evidence}
        fix = _SHUFFLE_FIX.format(bs=ld.batch_size)
        if grouped:
            out.append(finding(
                severity="problem",
                title="Training data not shuffled, and grouped by label",
                message=(f"{ld.name} uses a {ld.sampler} and its batches come grouped by label "
                         f"(batch label entropy {mix['entropy_ratio']:.0%} of a random "
                         "batch's): the model learns the order, not the task."),
                fix=fix, where=ld.name, evidence=ev))
        else:
            out.append(finding(
                severity="info",
                title="Training data read in a fixed order",
                message=(f"{ld.name} uses a {ld.sampler}: every epoch sees the batches in the "
                         "same order. The labels look well mixed, so no harm is shown, but the "
                         "article advises shuffling every epoch."),
                fix=fix, where=ld.name, evidence=ev))
    if out:
        return out
    fix = ("Draw a new permutation every epoch: perm = torch.randperm(len(X)); then take "
           "X[perm[i:i + bs]], y[perm[i:i + bs]] - or use DataLoader(..., shuffle=True).")
    if period is not None:
        ev = {"batches_per_epoch": period, **evidence}
        if grouped:
            return [finding(
                severity="problem",
                title="Same batch order every epoch, grouped by label",
                message=(f"The training batches came in the same order in two epochs ({period} "
                         "batches each) and each batch is dominated by one label: the model "
                         "learns the order of the data, not the task."),
                fix=fix, evidence=ev)]
        return [finding(
            severity="info",
            title="Same batch order every epoch",
            message=(f"The training batches came in the same order in two epochs ({period} "
                     "batches each). The labels look well mixed, so no harm is shown, but the "
                     "article advises shuffling every epoch."),
            fix=fix, evidence=ev)]
    if grouped and mix["label_changes"] < SORTED_CHANGES:
        return [finding(
            severity="problem",
            title="Training batches sorted by label",
            message=(f"The training batches come sorted by label: the most common label "
                     f"changes between only {mix['label_changes']:.0%} of consecutive "
                     f"batches and a batch's label entropy is {mix['entropy_ratio']:.0%} of "
                     "a random batch's."),
            fix=fix, evidence=evidence)]
    return []


@check("single-label", point=7, phase="setup")
def single_label_batches(obs: Observations) -> list[Finding] | str:
    """Batches holding one class, or far fewer classes than random batches would."""
    mixing = batch_mixing(obs)
    if mixing is None:
        if obs.losses and "labels" not in obs.timelines:
            return NOT_APPLICABLE        # no class-index loss: regression, KL, ...
        return NOT_CHECKED
    custom = [ld for ld in obs.train_loaders
              if ld.sampler and ld.sampler not in ("RandomSampler", "SequentialSampler")]
    where = custom[0].name if custom else None
    sampler = f" (its batch sampler is a {custom[0].sampler})" if custom else ""
    fix = ("Shuffle the whole data set (DataLoader(..., shuffle=True)) instead of drawing "
           "batches from one class; with imbalanced classes use a WeightedRandomSampler, "
           "which still mixes classes in every batch.")
    single, expected = mixing["single_class_share"], mixing["expected_single_share"]
    if single >= SINGLE_SHARE and single > expected + SINGLE_MARGIN:
        return [finding(
            severity="problem",
            title="Batches hold a single class",
            message=(f"{single:.0%} of the training batches hold one class only (random "
                     f"batches of {mixing['batch_size']:.0f} would give {expected:.0%})"
                     f"{sampler}: each step pulls the model towards one class."),
            fix=fix, where=where, evidence=_round(mixing))]
    if mixing["entropy_ratio"] < GROUPED_ENTROPY_RATIO:
        return [finding(
            severity="warning",
            title="Batches hold few classes",
            message=(f"The label entropy of a training batch is {mixing['entropy_ratio']:.0%} "
                     f"of a random batch's{sampler}: batches are dominated by few classes."),
            fix=fix, where=where, evidence=_round(mixing))]
    return []


def _binary(mean: float, std: float, lo: float, hi: float) -> bool:
    return lo == 0.0 and hi == 1.0 and abs(std * std - mean * (1 - mean)) < 1e-3


@check("input-range", point=5, phase="setup")
def input_ranges(obs: Observations) -> list[Finding] | str:
    """Raw 0..255 pixels, features on very different scales, features far from zero mean."""
    inputs = {k: v for k, v in obs.extra.get("inputs", {}).items() if "mean" in v}
    if not inputs:
        if obs.extra.get("inputs"):
            return NOT_APPLICABLE        # integer inputs: token ids, indices
        return NOT_CHECKED
    out = []
    for model, s in inputs.items():
        mean, std, lo, hi = s["mean"], s["std"], s["min"], s["max"]
        if not mean:
            continue
        image = s.get("ndim") == 4 or s["features"] >= RAW_PIXEL_FEATURES
        top = max(hi)
        if image and min(lo) >= 0 and RAW_PIXEL_MAX < top <= 255.5:
            out.append(finding(
                severity="warning",
                title="Raw 0..255 pixel values",
                message=(f"The inputs of {model} range over [{min(lo):.4g}, {top:.4g}]: they "
                         "look like raw 8-bit pixels. Large unnormalised inputs make the first "
                         "layers saturate and slow training down."),
                fix=("Scale and standardise: x = x / 255.0, then (x - mean) / std per channel "
                     "(torchvision: transforms.ToTensor() + transforms.Normalize(mean, std))."),
                where=model, evidence={"min": min(lo), "max": top, "batches": s["batches"]}))
            continue
        live = [i for i in range(len(std))
                if std[i] > CONSTANT_REL * max(abs(lo[i]), abs(hi[i])) + 1e-12
                and not _binary(mean[i], std[i], lo[i], hi[i])]
        if not live:
            continue
        spreads = [std[i] for i in live]
        ratio = max(spreads) / statistics.median(spreads)
        widest = live[spreads.index(max(spreads))]
        far = [(abs(mean[i]) / std[i], i) for i in live
               if abs(mean[i]) >= OFF_CENTER * std[i]
               and min(abs(lo[i]), abs(hi[i])) >= OFF_CENTER_RANGES * (hi[i] - lo[i])
               and (lo[i] > 0 or hi[i] < 0)]
        problems = []
        if ratio >= SCALE_RATIO:
            problems.append(f"feature {widest} spreads {ratio:.0f}x more than the median "
                            f"feature (std {std[widest]:.4g})")
        elif std[widest] >= LARGE_STD:
            problems.append(f"feature {widest} has std {std[widest]:.4g}, where a network "
                            "expects values of order 1")
        off = 0.0
        if far:
            off, off_i = max(far)
            problems.append(f"feature {off_i} sits {off:.0f} standard deviations from 0 "
                            f"(mean {mean[off_i]:.4g}, std {std[off_i]:.4g}, range "
                            f"[{lo[off_i]:.4g}, {hi[off_i]:.4g}])")
        if problems:
            out.append(finding(
                severity="warning",
                title="Inputs not normalised",
                message=f"The inputs of {model} are not standardised: " + "; ".join(problems)
                        + ".",
                fix=("Standardise each feature with statistics of the training set: "
                     "mu, sd = X_train.mean(0), X_train.std(0); X = (X - mu) / (sd + 1e-8) "
                     "(or sklearn.preprocessing.StandardScaler)."),
                where=model, evidence={"scale_ratio": ratio, "max_abs_mean_over_std": off,
                                       "features": s["features"], "batches": s["batches"]}))
    return out


def _batch_size(obs: Observations) -> tuple[int | None, int | None, str | None]:
    for ld in obs.train_loaders:
        if ld.batch_size:
            return ld.batch_size, ld.dataset_size, ld.name
    if obs.train_batch_sizes:
        size = max(obs.train_batch_sizes, key=lambda k: obs.train_batch_sizes[k])
        return size, None, None
    return None, None, None


@check("batch-size", point=16, phase="setup")
def batch_size(obs: Observations) -> list[Finding] | str:
    """Information: a batch that holds a large share of the data set."""
    size, data, where = _batch_size(obs)
    if size is None:
        return NOT_CHECKED
    if data is None:
        reps = obs.input_fingerprints
        period = repeat_period(obs)
        if period is not None and reps:
            data = int(sum(fp[0] for fp in reps[:period]))
        elif len(reps) >= 2 and all(same_batch(fp, reps[0]) for fp in reps):
            data = size                  # the same full batch at every step
    if not data or size < LARGE_BATCH_SHARE * data:
        return []
    return [finding(
        severity="info", title="Large batch for the data set",
        message=(f"A training batch holds {size} of {data} samples ({size / data:.0%}): "
                 f"{max(1, -(-data // size))} step(s) per epoch. The article notes that smaller "
                 "batches often generalise better; try both."),
        fix=f"Try a smaller batch, e.g. DataLoader(dataset, batch_size={max(1, size // 4)}, "
            "shuffle=True), with more steps.",
        where=where, evidence={"batch_size": size, "dataset_size": data})]
