"""Pre-flight verdicts (``--preflight``): the experiments' results into findings.

Each check reads ``obs.preflight`` (see ``nbdebug.preflight``) and returns NOT_CHECKED when
its experiment did not run. A claim rests on what copies of this model did on this run's
first batch; the curves are in the report's ``preflight/...`` timelines.
"""

from __future__ import annotations

import math
from typing import Any

from ..observations import Observations
from ..report import Finding
from .harm import no_harm, progress_known, stalled
from .registry import NOT_CHECKED, check

PRESET = ("preflight",)
#: loss at init this many times its expected value (and 1 nat above it) is a bad init
INIT_RATIO = 3.0
INIT_EXCESS = 1.0
#: MSE at init this many times the targets' mean square, with an output this many times
#: wider than the targets, is a blown-up output
MSE_RATIO = 100.0
MSE_WIDE = 10.0
#: a layer multiplying its input's spread by more than this is off scale
GAIN = 3.0
#: inputs with a spread above this make the loss at init large with well-scaled layers
WIDE_INPUT = 3.0
#: "near zero" for the overfit run: this share of the loss at init
FIT_SHARE = 0.1
#: an overfit run whose best stays above this share of its start did not learn at all; in
#: between, a small or slow model may need more steps (no claim)
NO_LEARNING = 0.5
#: a weight whose gradient is this small against the weight itself gets no learning signal
VANISHED = 1e-7
#: held-half improvement (share of its loss at init) below which labels told nothing
LABEL_GAIN = 0.01
#: ... and no more than this above the permuted labels' (any real signal is silent)
LABEL_MARGIN = 0.01
#: the real labels' own half must have been fit to this share of its start
LABEL_FIT = 0.75
#: a loss this many times its start has diverged
DIVERGED = 4.0
#: the user's lr run must end this close to its start (or above) to count as not learning
SLOW_MOVE = 0.98
#: ... while the suggested lr gets at least this far down
SUGGESTED_MOVE = 0.8


def _result(obs: Observations, name: str) -> dict[str, Any] | None:
    res = obs.preflight.get(name) if obs.preflight else None
    return res if isinstance(res, dict) else None


def _step(obs: Observations) -> int | None:
    return obs.preflight.get("step")


@check("preflight-init-loss", point=1, phase="setup", presets=PRESET)
def init_loss(obs: Observations) -> list[Finding] | str:
    """Pre-flight: the first batch's loss at init far above its expected value (ln C for
    classification), naming the layer whose scale is off."""
    res = _result(obs, "init_loss")
    if res is None or res.get("expected") is None:
        return NOT_CHECKED
    loss, expected = res["loss"], res["expected"]
    if res["loss_fn"] == "mse_loss":
        bad = (res.get("ratio") or 0) >= MSE_RATIO and res.get("output_std", 0) >= (
            MSE_WIDE * max(res.get("target_std", 0.0), 1e-12))
    else:
        bad = loss >= INIT_RATIO * expected and loss - expected >= INIT_EXCESS
    if not bad:
        return []
    layers = [r for r in res.get("layers", []) if r.get("gain") is not None]
    worst = max(layers, key=lambda r: r["gain"], default=None)
    if (worst is None or worst["gain"] < GAIN) and layers and layers[0]["in_std"] > WIDE_INPUT:
        return []          # the layers are at scale, the inputs are not: point 5 says so
    where = None
    msg = (f"At init the first batch's {res['loss_fn']} is {loss:.4g}, {loss / expected:.1f}x "
           f"its expected value {expected:.4g} ({res['expected_is']}): the model starts "
           f"confidently wrong (outputs up to {res.get('output_absmax', float('nan')):.3g}).")
    fix = ("Initialise the layers at the fan-in scale (PyTorch's default, or "
           "nn.init.kaiming_normal_ / xavier_uniform_), not with a hand-picked std.")
    if worst is not None and worst["gain"] >= GAIN:
        where = f"{worst['name']} ({worst['type']})"
        msg += (f" {where} multiplies the spread of its input by {worst['gain']:.3g} "
                f"(output std {worst['out_std']:.3g}); a layer at the fan-in scale keeps it "
                "near 1.")
        fix = (f"Re-initialise {worst['name']}: nn.init.kaiming_uniform_(layer.weight, "
               "a=5 ** 0.5) (PyTorch's default) or xavier_uniform_, instead of its current "
               f"std; it should bring its gain from {worst['gain']:.3g} to about 1.")
    return [Finding(check="preflight-init-loss", point=1, severity="problem",
                    title="Loss at init far above its expected value", message=msg, fix=fix,
                    where=where, evidence={k: res.get(k) for k in (
                        "loss", "expected", "expected_is", "ratio", "output_absmax",
                        "output_std")} | {"worst_layer": worst}, step=_step(obs))]


@check("preflight-overfit", point="stuck", phase="setup", presets=PRESET)
def overfit(obs: Observations) -> list[Finding] | str:
    """Pre-flight: a copy cannot drive one small batch's loss near zero with Adam at a safe
    lr; says where gradients vanish or what blocks learning."""
    res = _result(obs, "overfit")
    if res is None or res.get("budget_out"):
        return NOT_CHECKED
    if res["fits"] or res.get("nonfinite") or res["best"] <= NO_LEARNING * res["init"]:
        return []              # (a NaN is point 13's: the NaN checks name where it starts)
    inputs = _result(obs, "inputs")
    if inputs is not None and _ignores_inputs(inputs):
        return []              # one root cause, one finding: "preflight-inputs" names it
    grads = res.get("grads", {})
    ratios: dict[str, float] = grads.get("ratio", {})
    vanished = [n for n, r in ratios.items() if r < VANISHED]
    init = _result(obs, "init_loss") or {}
    if grads.get("no_grad"):
        where = grads["no_grad"][0]
        cause = (f"no gradient reaches {', '.join(grads['no_grad'][:4])}: the graph from the "
                 "loss does not go through them (a .detach(), .item(), numpy or a "
                 "torch.no_grad() in the forward)")
        fix = f"Keep the forward differentiable up to {where}: remove the detach / numpy step."
    elif vanished:
        where = vanished[0]
        cause = (f"gradients vanish at {', '.join(vanished[:4])} (gradient/weight norm "
                 f"{ratios[where]:.2g} at the first step)")
        fix = (f"Give {where} a gradient: check saturating activations (sigmoid/tanh) and "
               "dead ReLUs before it, the init scale, and add normalisation or residuals.")
    elif init.get("constant_output"):
        where = None
        cause = ("the model gives every sample the same output at init (zero or constant "
                 "weights: every unit gets the same gradient)")
        fix = "Initialise the weights randomly (PyTorch's default init); biases may stay 0."
    else:
        where = None
        cause = ("nothing in the gradients explains it; a small or slow model may need more "
                 "steps, or the loss and the labels do not fit together")
        fix = ("Check that the loss compares the model's output with the right targets "
               "(shapes, dtype, the label column) and that the model can express them.")
    msg = (f"A copy trained on {res['samples']} samples of the first batch with "
           f"{res['optimizer']} for {res['steps']} steps took the loss from {res['init']:.4g} "
           f"only to {res['best']:.4g} (best), not even half way to zero. A model that cannot memorise one small batch cannot learn the data "
           f"set: {cause}.")
    # a cause in the gradients is wrong whatever happens next; without one, slow is not stuck
    severity = "problem" if where is not None or init.get("constant_output") else "info"
    return [Finding(check="preflight-overfit", point="stuck", severity=severity,
                    title="Cannot overfit one batch", message=msg, fix=fix, where=where,
                    evidence={k: res.get(k) for k in ("samples", "steps", "init", "best",
                                                      "final", "optimizer")}
                    | {"no_grad": grads.get("no_grad", [])[:10], "vanished": vanished[:10]},
                    step=_step(obs))]


def _ignores_inputs(res: dict[str, Any]) -> bool:
    """Zeroed inputs do as well as the real ones, and the real ones did not fit the batch."""
    real, zero, init = res["real_best"], res["zero_best"], res["init"]
    return real > FIT_SHARE * init and zero <= real + 0.05 * abs(init)


@check("preflight-inputs", point="inputs-used", phase="setup", presets=PRESET,
       title="Output depends on the inputs")
def inputs(obs: Observations) -> list[Finding] | str:
    """Pre-flight: a copy fed zeroed inputs fits the first batch as well as one fed the real
    inputs: the model ignores its inputs (a broken data path)."""
    res = _result(obs, "inputs")
    if res is None:
        return NOT_CHECKED
    if not _ignores_inputs(res):
        return []
    return [Finding(
        check="preflight-inputs", point="inputs-used", severity="problem",
        title="The model ignores its inputs",
        message=(f"Trained on the first batch for {res['steps']} steps, a copy fed the real "
                 f"inputs got its loss to {res['real_best']:.4g} and a copy fed zeros got to "
                 f"{res['zero_best']:.4g}: the inputs add nothing. The output does not "
                 "depend on the samples (inputs overwritten, a wrong variable fed forward, a "
                 "batch statistic instead of per-sample features, or a constant data path)."),
        fix=("Follow the input through forward(): each sample's output must be computed from "
             "that sample (print model(x[:2]) for two different samples)."),
        where=None, evidence={k: res.get(k) for k in ("steps", "init", "real_best",
                                                       "zero_best")}, step=_step(obs))]


@check("preflight-lr-too-high", point=3, phase="setup", presets=PRESET)
def lr_too_high(obs: Observations) -> list[Finding] | str:
    """Pre-flight: the user's lr is near or above where an lr sweep on a copy diverges, and
    a copy trained at that lr diverges on the first batch's other half."""
    res = _result(obs, "lr_range")
    if res is None:
        return NOT_CHECKED
    div, user = res.get("diverged_at"), res["lr"]
    run = res.get("at_user_lr")
    if div is None or not run or not run["complete"]:
        return []
    # the loss it trains on jumps (or turns non-finite): too large whatever the data; or the
    # lr is past the sweep's divergence point and the other half's loss blows up with it
    spiked = not run["finite"] or run["max"] >= DIVERGED * run["init"]
    past = user >= div and run.get("held_max", 0.0) >= DIVERGED * run.get("held_init", math.inf)
    if not (spiked or past):
        return []
    lo, hi = res["suggested_range"]
    how = "becomes non-finite" if not run["finite"] else (
        f"jumps from {run['init']:.4g} up to {run['max']:.4g}" if spiked else
        f"on the other half goes from {run['held_init']:.4g} up to {run['held_max']:.4g}")
    return [Finding(
        check="preflight-lr-too-high", point=3, severity="problem",
        title="Learning rate too large (pre-flight)",
        message=(f"An lr sweep of a fresh {res['optimizer']} on a copy diverged at lr "
                 f"{div:.3g}; your lr is {user:g}. Trained at your lr on half of the first "
                 f"batch, a copy's loss {how} in {run['steps']} steps: "
                 "the real training is on its way to diverge."),
        fix=(f"Use lr={res['suggested']:.2g} (the sweep's best lr {res['best_at']:.2g} / 10; "
             f"useful range {lo:.2g} .. {hi:.2g})."),
        where=f"lr {user:g}", evidence={k: res.get(k) for k in (
            "lr", "diverged_at", "best_at", "suggested", "suggested_range", "at_user_lr")},
        step=_step(obs))]


@check("preflight-lr-too-small", point="stuck", phase="setup", presets=PRESET)
def lr_too_small(obs: Observations) -> list[Finding] | str:
    """Pre-flight: the user's lr is far below where the loss starts moving in the sweep; a
    copy at that lr barely moves while one at the suggested lr learns."""
    res = _result(obs, "lr_range")
    if res is None:
        return NOT_CHECKED
    mine, good = res.get("at_user_lr"), res.get("at_suggested_lr")
    if not mine or not good or not (mine["complete"] and good["complete"]):
        return []
    if not (mine["final"] >= SLOW_MOVE * mine["init"]
            and good["final"] <= SUGGESTED_MOVE * good["init"]):
        return []
    # a prediction until the run shows it: a run that makes progress anyway is advice
    shown = not progress_known(obs) or stalled(obs) is not None
    after = ("" if shown else f" {no_harm(obs)}: the real training moves at this lr, only "
             "slower than it could.")
    return [Finding(
        check="preflight-lr-too-small", point="stuck",
        severity="warning" if shown else "info",
        title="Learning rate far too small (pre-flight)",
        message=(f"In an lr sweep on a copy the loss starts to move only from lr "
                 f"{res['moving_from']:.2g}; your lr is {res['lr']:g}. On half the first "
                 f"batch a copy at your lr went from {mine['init']:.4g} to {mine['final']:.4g} in "
                 f"{mine['steps']} steps, one at lr {good['lr']:.2g} to {good['final']:.4g}."
                 + after),
        fix=f"Raise the lr to about {res['suggested']:.2g} (the sweep's best lr / 10).",
        where=f"lr {res['lr']:g}", evidence={k: res.get(k) for k in (
            "lr", "moving_from", "suggested", "at_user_lr", "at_suggested_lr")},
        step=_step(obs))]


@check("preflight-labels", point=10, phase="setup", presets=PRESET)
def labels(obs: Observations) -> list[Finding] | str:
    """Pre-flight: real labels tell a held-out half of the first batch no more than permuted
    labels do: labels that do not match their samples, with no held-out data needed."""
    res = _result(obs, "labels")
    if res is None:
        return NOT_CHECKED
    if res["real_train_final"] > LABEL_FIT * res["real_train_init"]:
        return NOT_CHECKED     # the copies did not learn enough to judge
    real, perm = res["real_gain"], res["permuted_gain"]
    if real >= LABEL_GAIN or real > perm + LABEL_MARGIN:
        return []
    return [Finding(
        check="preflight-labels", point=10, severity="problem",
        title="Labels do not match the samples (pre-flight)",
        message=(f"A copy fit half of {_samples(res)} with its real "
                 f"labels, other copies with permuted labels. On the other half the real "
                 f"labels improved the loss by {real:.1%} at best, permuted ones by "
                 f"{perm:.1%}: the labels carry no more information about their samples than "
                 "shuffled ones. The model will memorise them and learn nothing that "
                 "generalises."),
        fix=("Check how samples and labels are paired: one index (and one permutation) for "
             "both, the label column, and a few (sample, label) pairs by eye."),
        where=None, evidence={k: res.get(k) for k in (
            "samples", "steps", "real_gain", "permuted_gain", "held_init", "real_held_best",
            "permuted_held_best", "batches")}, step=res.get("step", _step(obs)))]


def _samples(res: dict[str, Any]) -> str:
    n, k = res["samples"], res.get("batches", 1)
    return (f"the first batch ({n} samples)" if k == 1 else
            f"the first {k} training batches ({n} samples, gathered before step {k})")
