"""Checks of the model's structure and initialisation: points 12, 14, 15, 17, 18, "frozen"."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..observations import ModelInfo, ModuleInfo, Observations
from ..report import Finding
from .harm import describe_stall, mode_gap, no_harm, overfits, stalled
from .logits import saturated_softmax
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding

#: a weight tensor whose range is below this share of its magnitude is one constant
CONSTANT_SPREAD = 1e-6
#: std * sqrt(fan_in) of the usual inits: torch's default 0.577 .. Kaiming (ReLU) 1.41;
#: ten times outside that range is an order of magnitude off the fan-in rule
INIT_GAIN_LOW = 0.577 / 10
INIT_GAIN_HIGH = 1.414 * 10
#: a weight this many times the largest std any standard init gives its shape (Kaiming
#: on fan_in or fan_out, Xavier with tanh's gain, 0.02, an embedding's N(0, 1)) is several
#: times the fan-in scale: an init applied twice, a scale multiplied in twice
INIT_ABOVE_STANDARD = 3.0
#: BatchNorm estimates poor statistics from fewer samples than this (the article: 16)
BN_MIN_BATCH = 16
#: dropout after convolutions above this p hurts (the article: keep 0.1-0.2)
CONV_DROPOUT_MAX = 0.2

_WEIGHTED = ("Linear", "Conv1d", "Conv2d", "Conv3d", "Bilinear", "LazyLinear", "LazyConv1d",
             "LazyConv2d", "LazyConv3d")
_CONV = ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
_NORMS = ("BatchNorm", "SyncBatchNorm", "LazyBatchNorm", "LayerNorm", "GroupNorm",
          "InstanceNorm", "LazyInstanceNorm", "RMSNorm", "LocalResponseNorm")
_ACTIVATIONS = ("ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU",
                "SiLU", "Mish", "Tanh", "Sigmoid", "Hardswish", "Hardsigmoid", "Hardtanh",
                "Softplus", "LogSigmoid")
#: modules a dropout may sit behind and still be "after a conv"
_TRANSPARENT = _ACTIVATIONS + ("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d",
                               "AvgPool3d", "Identity", "Dropout", "Dropout1d", "Dropout2d",
                               "Dropout3d")


def is_norm(t: str) -> bool:
    return t.startswith(_NORMS)


def is_batchnorm(t: str) -> bool:
    return t.startswith(("BatchNorm", "SyncBatchNorm", "LazyBatchNorm"))


def trained_models(obs: Observations) -> list[ModelInfo]:
    return [m for m in obs.models if m.training_forwards > 0]


def layer_sequence(m: ModelInfo) -> tuple[list[ModuleInfo], bool]:
    """Leaf modules in execution order (first training pass); registration order otherwise."""
    by_name = {x.name: x for x in m.modules}
    seq = [by_name[n] for n in m.exec_order if n in by_name]
    if seq:
        return seq, True
    return [x for x in m.modules if x.leaf], False


@check("zero-init", point=17, phase="setup")
def zero_init(obs: Observations) -> list[Finding] | str:
    """Weights all zero or constant at the first step (a problem whatever happens); weight std
    far from the fan-in rule (advice, a warning when the training stalls)."""
    weights = [p for m in obs.models for p in m.params
               if p.ndim >= 2 and p.requires_grad and p.min is not None]
    if not weights:
        return NOT_CHECKED if not obs.models else NOT_APPLICABLE
    types = {x.name: x.type for m in obs.models for x in m.modules}
    huge = saturated_softmax(obs)
    out = []
    for p in weights:
        if (p.numel >= 2 and p.max is not None and p.min is not None
                and p.max - p.min <= CONSTANT_SPREAD * (p.absmax or 0.0)):
            zero = p.absmax == 0.0
            value = "0" if zero else f"{p.mean:.4g}"
            out.append(finding(
                severity="problem",
                title="Weights initialised to a constant",
                message=(f"{p.name} {list(p.shape)} is {'all zero' if zero else 'constant'} "
                         f"(every entry = {value}) at the first step: every unit gets the "
                         "same gradient, so the units never become different."),
                fix=("Use the default init or nn.init.kaiming_uniform_(w, nonlinearity='relu') "
                     "/ nn.init.xavier_uniform_(w); only biases may start at zero."),
                where=p.name, evidence={"std": p.std, "min": p.min, "max": p.max,
                                        "shape": list(p.shape)}))
            continue
        owner, _, leaf = p.name.rpartition(".")
        kind = types.get(owner)
        if leaf != "weight" or kind not in _WEIGHTED + ("Embedding",) or p.std is None:
            continue
        fan_in = math.prod(p.shape[1:])
        gain = p.std * math.sqrt(fan_in)
        standard = standard_std(kind, p.shape)
        above = p.std >= INIT_ABOVE_STANDARD * standard
        big = above or (kind != "Embedding" and gain > INIT_GAIN_HIGH)
        if not big and (kind == "Embedding" or INIT_GAIN_LOW <= gain):
            continue
        rule = math.sqrt(2.0 / fan_in)
        harm = stalled(obs)
        shown = (f" The run shows it: {describe_stall(harm)}." if harm else
                 " The run shows it: the logits are huge (point 1)." if big and huge else
                 f" {no_harm(obs)}.")
        out.append(finding(
            severity="warning" if harm or (big and huge) else "info",
            title="Weight init far from the fan-in rule",
            message=(f"{p.name} ({kind}) starts with std {p.std:.3g}, "
                     + (f"{p.std / standard:.3g}x the largest std a standard init gives this "
                        f"shape ({standard:.3g}; Kaiming sqrt(2/fan_in) = {rule:.3g}, fan_in "
                        f"{fan_in}; an init applied twice, a scale multiplied in twice, a "
                        "std meant for another width): activations and logits grow layer by "
                        "layer (huge logits, point 1)." if above else
                        f"{p.std / rule:.3g}x the Kaiming value sqrt(2/fan_in) = {rule:.3g} "
                        f"(fan_in {fan_in}): activations and logits grow layer by layer "
                        "(huge logits, point 1)." if big else
                        f"{p.std / rule:.3g}x the Kaiming value sqrt(2/fan_in) = {rule:.3g} "
                        f"(fan_in {fan_in}): signals and gradients shrink layer by layer.")
                     + shown),
            fix=(f"nn.init.kaiming_normal_({p.name}, nonlinearity='relu') (or keep PyTorch's "
                 "default init; nn.init.xavier_uniform_ for tanh/sigmoid layers)."),
            where=p.name, evidence={"std": p.std, "fan_in": fan_in, "kaiming_std": rule,
                                    "std_times_sqrt_fan_in": gain,
                                    "largest_standard_std": standard}))
    return out


def standard_std(kind: str, shape: Sequence[int]) -> float:
    """The largest std a standard init gives a weight of this shape: Kaiming (ReLU) on
    fan_in or fan_out, Xavier with tanh's gain 5/3, the transformers' 0.02, and N(0, 1)
    for an embedding (torch's default)."""
    if kind == "Embedding":
        return 1.0
    field = math.prod(shape[2:])
    fan_in, fan_out = max(shape[1] * field, 1), max(shape[0] * field, 1)
    return max(math.sqrt(2.0 / fan_in), math.sqrt(2.0 / fan_out),
               5 / 3 * math.sqrt(2.0 / (fan_in + fan_out)), 0.02)


def _bn_layers(obs: Observations) -> list[str]:
    return [x.name for m in trained_models(obs) for x in m.modules if is_batchnorm(x.type)]


@check("bn-batch", point=12, phase="setup")
def batchnorm_batch(obs: Observations) -> list[Finding] | str:
    """BatchNorm layers reached by batches below 16, or by a last partial batch of 1: advice
    (info), a warning when train-mode and eval-mode results are far apart."""
    if not trained_models(obs):
        return NOT_CHECKED
    layers = _bn_layers(obs)
    if not layers:
        return NOT_APPLICABLE
    seen = {k: v for k, v in obs.batchnorm_batches.items() if v}
    if not seen:
        return NOT_CHECKED
    typical = {k: max(v, key=lambda n: (v[n], n)) for k, v in seen.items()}
    small = sorted((n, k) for k, n in typical.items() if n < BN_MIN_BATCH)
    single = [k for k, v in seen.items() if 1 in v and typical[k] > 1]
    loaders = [ld for ld in obs.train_loaders if ld.batch_size]
    loader = loaders[0] if loaders else None
    evidence = {"batch_sizes": {k: {str(n): c for n, c in sorted(v.items())}
                                for k, v in seen.items()}}
    harm = mode_gap(obs)
    if harm:
        evidence.update(harm)
        held, acc, name = harm["heldout_accuracy"], harm["train_accuracy"], harm["heldout"]
        what = (f"in eval mode the accuracy on {name} is {held:.0%} against {acc:.0%} in "
                "training" if harm["direction"] == "eval-worse" else
                f"in train mode, with the batches' own statistics, the training accuracy is "
                f"only {acc:.0%}, while the same model in eval mode (running statistics) "
                f"reaches {held:.0%} on {name}: the batch statistics are too noisy")
    shown = (f", and the run shows the harm: {what}." if harm else
             ". The run shows no harm (train-mode and eval-mode results agree, or there is "
             "no held-out pass to compare), so this is advice.")
    severity = "warning" if harm else "info"
    out = []
    if small:
        n, where = small[0]
        channels = _attr(obs, where, "num_features")
        norm = (f"nn.GroupNorm(num_groups={_groups(channels)}, num_channels={channels})"
                if isinstance(channels, int) else "nn.GroupNorm(num_groups, num_channels)")
        out.append(finding(
            severity, "BatchNorm with tiny batches",
            message=(f"{len(small)} BatchNorm layer(s) see batches of {n} in training "
                     f"({where} first): BatchNorm's mean and variance from fewer than "
                     f"{BN_MIN_BATCH} samples are noisy" + shown),
            fix=(f"Use batches of {BN_MIN_BATCH} or more, or a batch-independent norm in place "
                 f"of {where}: {norm} or nn.LayerNorm."),
            where=where, evidence=evidence))
    if single:
        name = loader.name if loader else "the loader"
        out.append(finding(
            severity, "A batch of 1 reached BatchNorm in training mode",
            message=(f"A batch of one sample reached {single[0]} in training mode (a last "
                     f"partial batch of {name}): its statistics come from a single sample "
                     "(BatchNorm1d on (N, C) inputs raises an error)" + shown),
            fix=("DataLoader(dataset, batch_size=..., shuffle=True, drop_last=True)"
                 + (f" for {loader.name} ({loader.dataset_size} samples, batch "
                    f"{loader.batch_size})" if loader and loader.dataset_size else "")),
            where=single[0], evidence=evidence))
    return out


def _attr(obs: Observations, module: str, attr: str) -> object:
    return next((x.attrs.get(attr) for m in obs.models for x in m.modules if x.name == module),
                None)


def _groups(channels: int) -> int:
    """The largest usual GroupNorm group count that divides ``channels``."""
    return next(g for g in (32, 16, 8, 4, 2, 1) if channels % g == 0)


@check("bn-placement", point=14, phase="setup")
def batchnorm_placement(obs: Observations) -> list[Finding] | str:
    """Information: the order of the layers around each BatchNorm."""
    models = trained_models(obs) or obs.models
    if not models:
        return NOT_CHECKED
    orders = []
    for m in models:
        seq, executed = layer_sequence(m)
        for i, x in enumerate(seq):
            if not is_batchnorm(x.type):
                continue
            before = seq[i - 1].type if i > 0 else "input"
            after = seq[i + 1].type if i + 1 < len(seq) else "output"
            place = ("before the activation" if after in _ACTIVATIONS else
                     "after the activation" if before in _ACTIVATIONS else "between layers")
            orders.append({"layer": x.name, "order": f"{before} -> {x.type} -> {after}",
                           "placement": place, "from": "execution" if executed else
                           "registration"})
    if not orders:
        return NOT_APPLICABLE
    listed = "; ".join(f"{o['layer']}: {o['order']} ({o['placement']})" for o in orders[:6])
    return [finding(
        severity="info", title="BatchNorm placement",
        message=(f"{listed}. The original paper puts BatchNorm before the activation, many "
                 "find it works better after; a 2019 proposal (IC layer) orders ReLU -> "
                 "BatchNorm + dropout -> weights. Both common orders are fine."),
        fix="Nothing to fix; if training is unstable, try the other order.",
        where=orders[0]["layer"], evidence={"layers": orders})]


def _in_head(seq: list[ModuleInfo], i: int, conv: ModuleInfo) -> bool:
    """A plain Dropout registered apart from the convolutions (another container) and
    followed by a Linear layer is the classifier head's (AlexNet, VGG): it comes after the
    flatten, not after a convolution."""
    x = seq[i]
    if x.type != "Dropout" or x.name.rpartition(".")[0] == conv.name.rpartition(".")[0]:
        return False
    nxt = next((y for y in seq[i + 1:] if y.type in _WEIGHTED + _CONV), None)
    return nxt is not None and nxt.type in ("Linear", "LazyLinear")


@check("dropout-conv", point=15, phase="setup")
def dropout_after_conv(obs: Observations) -> list[Finding] | str:
    """Dropout with p > 0.2 right after convolution layers: advice (info), a warning when the
    run shows harm (train-mode accuracy far below eval-mode accuracy, a held-out loss that
    rises, a train/held-out gap that grows, or a training that stalls)."""
    models = trained_models(obs)
    if not models:
        return NOT_CHECKED
    found, any_dropout = [], False
    for m in models:
        seq, _ = layer_sequence(m)
        for i, x in enumerate(seq):
            if not x.type.startswith(("Dropout", "AlphaDropout", "FeatureAlphaDropout")):
                continue
            any_dropout = True
            p = x.attrs.get("p", 0.0)
            j = i - 1
            while j >= 0 and seq[j].type in _TRANSPARENT:
                j -= 1
            if (p > CONV_DROPOUT_MAX and j >= 0 and seq[j].type in _CONV
                    and not _in_head(seq, i, seq[j])):
                found.append((x.name, x.type, p, seq[j].name))
    if not found:
        return [] if any_dropout else NOT_APPLICABLE
    name, kind, p, conv = found[0]
    gap = mode_gap(obs)
    harm = (gap if gap and gap["direction"] == "train-worse" else None) or overfits(obs) \
        or stalled(obs)
    evidence = {"layers": [{"dropout": n, "p": q, "after": c} for n, _, q, c in found]}
    if harm:
        evidence.update(harm)
        what = harm.get("what") or (
            f"with dropout on (train mode) the training accuracy is only "
            f"{harm['train_accuracy']:.0%}, while the same model in eval mode reaches "
            f"{harm['heldout_accuracy']:.0%} on {harm['heldout']}" if "direction" in harm
            else describe_stall(harm))
        shown = ", and the run shows harm: " + what + "."
    else:
        shown = (". The run shows no harm (no rising held-out loss, no growing gap, no "
                 "stall), so this is advice: the article finds dropout on convolution "
                 "features may hurt.")
    return [finding(
        "warning" if harm else "info", "Strong dropout after convolutions",
        message=(f"{len(found)} dropout layer(s) after convolutions use p > "
                 f"{CONV_DROPOUT_MAX:g} ({name}: {kind}(p={p:g}) after {conv})" + shown),
        fix=(f"Keep it small, nn.{kind}(p=0.1), or drop it and use BatchNorm / weight decay; "
             "keep the larger dropout for the fully connected head."),
        where=name, evidence=evidence)]


@check("missing-bias", point=18, phase="setup")
def missing_bias(obs: Observations) -> list[Finding] | str:
    """Linear/Conv layers with bias=False that no normalisation layer follows: advice
    (info), a warning when the training stalls."""
    models = trained_models(obs)
    if not models:
        return NOT_CHECKED
    out = []
    for m in models:
        seq, executed = layer_sequence(m)
        weighted = [x for x in m.modules if x.type in _WEIGHTED + _CONV and "bias" in x.attrs]
        if not weighted:
            continue
        bare = []
        for i, x in enumerate(seq):
            if x.type not in _WEIGHTED + _CONV or x.attrs.get("bias", True):
                continue
            nxt = seq[i + 1].type if i + 1 < len(seq) else None
            if nxt is None or not is_norm(nxt):
                bare.append((x.name, nxt or "the output"))
        if not bare:
            continue
        # transformer style: no layer has a bias and LayerNorm/RMSNorm do the centring
        by_design = all(not x.attrs["bias"] for x in weighted) and any(
            x.type.startswith(("LayerNorm", "RMSNorm")) for x in m.modules)
        names = ", ".join(f"{n} (then {t})" for n, t in bare[:6])
        harm = None if by_design else stalled(obs)
        evidence = {"layers": [n for n, _ in bare], "next": [t for _, t in bare],
                    "order": "execution" if executed else "registration"}
        if harm:
            evidence.update(harm)
            shown = (f" And the run stalls: {describe_stall(harm)}, as a model that cannot "
                     "shift its outputs does.")
        elif by_design:
            shown = (" No layer of the model has a bias and LayerNorm/RMSNorm centre the "
                     "features: a design choice.")
        else:
            shown = f" {no_harm(obs)}."
        out.append(finding(
            "warning" if harm else "info", "Layers without bias",
            message=(f"{len(bare)} layer(s) of {m.name} have bias=False and no normalisation "
                     f"layer right after them: {names}. Without a bias every hyperplane "
                     "passes through the origin." + shown),
            fix=(f"Create {bare[0][0]} with bias=True (the default of nn.Linear / nn.Conv2d); "
                 "use bias=False only when a BatchNorm/LayerNorm follows."),
            where=bare[0][0], evidence=evidence))
    return out


@check("frozen", point="frozen", phase="setup", title="Something is trainable")
def frozen(obs: Observations) -> list[Finding] | str:
    """Nothing in the trained model(s) requires grad."""
    models = trained_models(obs)
    if not models:
        return NOT_CHECKED
    if any(p.requires_grad for m in models for p in m.params):
        return []
    names = ", ".join(m.name for m in models)
    return [finding(
        severity="problem", title="The model is frozen",
        message=(f"No parameter of {names} requires grad: backward computes nothing for "
                 "them and the model cannot learn (a loss.requires_grad_(True) only hides "
                 "the error)."),
        fix=f"{models[0].name}.requires_grad_(True) before building the optimizer, or unfreeze "
            "the layers you want to train.",
        where=models[0].name,
        evidence={"parameters": sum(len(m.params) for m in models), "requires_grad": 0})]
