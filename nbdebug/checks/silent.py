"""Silent errors a loss curve hides: data workers that draw the same random numbers,
dropout left on while the model evaluates, a held-out round that eval mode broke, and
an eval forward that gives two answers for one batch."""

from __future__ import annotations

import math

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding
from .timeline import classes


@check("worker-seeds", point="workers", phase="setup",
       title="Data workers draw different random numbers")
def worker_seeds(obs: Observations) -> list[Finding] | str:
    """A training loader with workers whose data set holds its own random generator: every
    worker gets a copy in the same state, so each draws the same "random" augmentation."""
    seen = obs.extra.get(keys.WORKER_RNG) or {}
    train = {ld.name for ld in obs.loaders if ld.role == "train"}
    hits = {name: v for name, v in seen.items() if name in train}
    if not hits:
        return NOT_APPLICABLE if not seen else []
    name, info = next(iter(hits.items()))
    gens = [path for path, _ in info["generators"]]
    path, kind = info["generators"][0]
    attr = path.split(".", 1)[1] if "." in path else path
    make = {"Generator": "np.random.default_rng(info.seed)",
            "RandomState": "np.random.RandomState(info.seed % 2**32)",
            "Random": "random.Random(info.seed)"}.get(kind, "np.random.default_rng(info.seed)")
    return [finding(
        severity="warning",
        title="Workers share one random state",
        message=(f"{name} runs {info['workers']} worker processes and its data set holds "
                 f"its own random generator ({', '.join(gens[:3])}): each worker gets a "
                 "copy in the same state, so the workers draw the same random numbers and "
                 f"the same 'random' augmentation repeats {info['workers']} times."),
        fix=("def seed_worker(worker_id):\n"
             "    info = torch.utils.data.get_worker_info()\n"
             f"    info.dataset.{attr} = {make}\n"
             "DataLoader(..., worker_init_fn=seed_worker)"),
        where=name, evidence={"loader": name, "generators": gens, "workers": info["workers"]})]


@check("eval-dropout", point="train-eval-mode", phase="end",
       title="model.train() / model.eval() where they belong")
def eval_dropout(obs: Observations) -> list[Finding] | str:
    """Dropout that stays on in an eval-mode forward: a functional call with training=True
    (F.dropout's default) or an attention's dropout_p that ignores the mode."""
    unreached = _unreached(obs)
    calls = [c for c in obs.dynamics.get(keys.EVAL_DROPOUT) or [] if c["where"] not in unreached]
    if not calls:
        return []
    first = calls[0]
    attention = first["call"].endswith("scaled_dot_product_attention")
    fix = ("F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training "
           "else 0.0)" if attention else
           f"{first['call']}(x, p={first['p']:g}, training=self.training), or an "
           "nn.Dropout module, which follows model.eval()")
    return [finding(
        severity="warning",
        title="Dropout on in eval mode",
        message=(f"{first['call']} with p={first['p']:g} ran with training on at "
                 f"{first['where']} while the model was in eval mode and gradients were off: "
                 "model.eval() does not reach a functional dropout, so held-out outputs are "
                 "random and their loss and accuracy are off."),
        fix=fix, where=first["where"], evidence={"calls": calls})]


#: a held-out round this many times the loss of a uniform guess, and this many times the
#: next round's, came from a forward that eval mode changes
EVAL_BLOWUP = 5.0
#: parameter names that mark a spectral or weight norm (old hooks and parametrizations)
_NORM_MARKS = ("weight_orig", "weight_g", "parametrizations.")


@check("eval-consistency", point="train-eval-mode", phase="end",
       title="model.train() / model.eval() where they belong")
def eval_consistency(obs: Observations) -> list[Finding] | str:
    """A held-out round whose loss is far above a uniform guess's and far above the next
    round's: the eval-mode forward differs from the training one (a spectral norm run in
    eval mode before any training forward, BatchNorm running statistics)."""
    c = classes(obs)
    if not c or c < 2:
        return []
    guess = math.log(c)
    for key, series in obs.timelines.items():
        if not key.startswith(keys.EVAL):
            continue
        rounds = [v for v in series.values if isinstance(v, dict)]
        for a, b in zip(rounds, rounds[1:]):
            if a["loss"] >= EVAL_BLOWUP * guess and a["loss"] >= EVAL_BLOWUP * b["loss"]:
                return [_eval_blowup(obs, key[len(keys.EVAL):], a, b, guess)]
    return []


def _eval_blowup(obs: Observations, loader: str, a: dict, b: dict, guess: float) -> Finding:
    norms = sorted({p.name.split(".weight")[0].split(".parametrizations")[0]
                    for m in obs.models for p in m.params
                    if any(mark in p.name for mark in _NORM_MARKS)})
    bns = [x.name for m in obs.models for x in m.modules if "BatchNorm" in x.type]
    if norms:
        cause = (f"spectral/weight norm in {', '.join(norms[:3])}: in eval mode it reuses its "
                 "stored estimate, which only training forwards update, so a held-out pass "
                 "before any training forward divides the weights by a wrong norm")
        fix = ("Run one training-mode forward (under torch.no_grad()) before the first "
               "evaluation, or evaluate only after training has started.")
        where = norms[0]
    elif bns:
        cause = (f"BatchNorm in {', '.join(bns[:3])}: eval mode normalises with running "
                 "statistics that did not match the data then")
        fix = ("Evaluate after some training steps, or check the running statistics "
               "(momentum, track_running_stats) of those layers.")
        where = bns[0]
    else:
        cause = "a layer that behaves differently in eval mode"
        fix = "Compare the model's outputs in train and eval mode on one held-out batch."
        where = loader
    return finding(
        severity="warning",
        title="A held-out round far off the next",
        message=(f"Held-out round {a['round']} on {loader} had loss {a['loss']:.4g}, "
                 f"{a['loss'] / guess:.0f}x a uniform guess's ({guess:.3g}) and "
                 f"{a['loss'] / max(b['loss'], 1e-12):.0f}x the next round's ({b['loss']:.4g}): "
                 f"the eval-mode forward went wrong, not the model. Likely {cause}."),
        fix=fix, where=where,
        evidence={"loader": loader, "round": a["round"], "loss": a["loss"],
                  "next_loss": b["loss"], "uniform_guess": round(guess, 4),
                  "norm_layers": norms, "batchnorm": bns})


#: two outputs of one batch differ when their largest gap is this share of the largest
#: output (GPU kernels that add in another order stay far below; half precision rounds)
DETERMINISM_TOL = {"float16": 1e-2, "bfloat16": 3e-2}
DETERMINISM_TOL_DEFAULT = 1e-4
#: module types eval mode switches to a fixed behaviour
_MODE_TYPES = ("Dropout", "AlphaDropout", "FeatureAlphaDropout", "RReLU", "BatchNorm",
               "SyncBatchNorm", "LazyBatchNorm", "InstanceNorm")


@check("eval-determinism", point="train-eval-mode", phase="end",
       title="model.train() / model.eval() where they belong")
def eval_determinism(obs: Observations) -> list[Finding] | str:
    """One held-out batch run twice in eval mode: outputs that differ, or buffers the eval
    forward changed. A warning when the cause is what eval mode should have switched off
    (a dropout mask drawn in an eval-mode module, a Dropout or BatchNorm that
    ``model.eval()`` never reached because the model holds it in a plain list); info when
    it samples by design (``randn`` in a VAE) or the cause cannot be named."""
    runs = obs.extra.get(keys.EVAL_DETERMINISM) or []
    done = [r for r in runs if not r.get("skipped") and ("scale" in r or r.get("mismatch"))]
    if not done:
        return NOT_APPLICABLE if not runs else NOT_CHECKED
    reported = {c["where"] for c in obs.dynamics.get(keys.EVAL_DROPOUT) or []} - _unreached(obs)
    out = []
    for r in done:
        f = _determinism(r, reported)
        if f is not None:
            out.append(f)
    return out


def _unreached(obs: Observations) -> set[str]:
    """The lines of dropout calls made by modules ``model.eval()`` never reached (held in a
    plain list): eval-determinism names those, with the module (one cause, one finding)."""
    return {c["where"] for r in obs.extra.get(keys.EVAL_DETERMINISM) or []
            for c in r.get("random_calls") or [] if c["training"] and not c["registered"]}


def _differs(r: dict) -> bool:
    if r.get("mismatch"):
        return True
    tol = DETERMINISM_TOL.get(r.get("dtype", ""), DETERMINISM_TOL_DEFAULT)
    return r["max_diff"] > tol * max(r["scale"], 1e-12)


def _determinism(r: dict, reported: set[str]) -> Finding | None:
    model = r["model"]
    loader = f"one batch of {r['loader']}" if r.get("loader") else "one held-out batch"
    evidence = {k: r[k] for k in ("model", "loader", "step", "max_diff", "scale", "dtype",
                                  "random_calls", "buffers", "state") if r.get(k) is not None}
    unreached = sorted((b for b in r.get("buffers") or [] if not b["registered"]
                        and b["training"] and b["type"].startswith(_MODE_TYPES)),
                       key=lambda b: b["buffer"] == "num_batches_tracked")
    if unreached:
        b = unreached[0]
        return finding(
            "warning", "Evaluation changes the model",
            message=(f"Running {model} in eval mode on {loader} updated the {b['buffer']} "
                     f"of a {b['type']} ({b['module']}) still in training mode: the model "
                     "holds it outside its registered submodules (a plain list or dict), "
                     "so model.eval() never reached it and every evaluation moves its "
                     "running statistics with held-out data."),
            fix="Hold the layers in nn.ModuleList / nn.ModuleDict so that model.eval() and "
                "model.train() reach them.", where=b["module"], evidence=evidence)
    if not _differs(r):
        if not r.get("buffers"):
            return None
        b = r["buffers"][0]
        return finding(
            "info", "Evaluation updates buffers",
            message=(f"Running {model} in eval mode on {loader} changed the {b['buffer']} "
                     f"of {b['module']} ({b['type']}): held-out data flows into the model's "
                     "state. Fine for a running normaliser meant to keep learning; otherwise "
                     "the update should follow self.training."),
            fix=f"Update {b['buffer']} only when self.training is True.",
            where=b["module"], evidence=evidence)
    calls = r.get("random_calls") or []
    mode = [c for c in calls if c["kind"] == "mode" or "Drop" in c["type"]]
    bug = [c for c in mode if c["where"] not in reported and (
        not c["training"] or not c["registered"])]
    gap = (f"the same batch gave outputs {r['max_diff']:.3g} apart (largest output "
           f"{r['scale']:.3g})" if "scale" in r else "the same batch gave outputs of "
           "another shape")
    if bug:
        c = bug[0]
        if c["training"]:
            cause = (f"a {c['type']} ({c['module']}, called at {c['where']}) is still in "
                     "training mode: the model holds it outside its registered submodules "
                     "(a plain list or dict), so model.eval() never reached it")
            fix = ("Hold the layers in nn.ModuleList / nn.ModuleDict so that model.eval() "
                   "reaches them.")
        else:
            cause = (f"{c['op']} at {c['where']} draws a random mask in {c['module']} "
                     f"({c['type']}) although it is in eval mode: the call does not follow "
                     "self.training")
            fix = (f"Make the call at {c['where']} depend on self.training (skip it, or pass "
                   "training=self.training), or use an nn.Dropout module.")
        return finding(
            "warning", "Random outputs in eval mode",
            message=(f"{model} was run twice in eval mode on {loader} and "
                     f"{gap}: {cause}. Held-out loss and accuracy are noisy and lower than "
                     "the model's."),
            fix=fix, where=c["module"], evidence=evidence)
    if any(c["where"] in reported for c in mode):
        return None                    # eval-dropout names this one (one cause, one finding)
    if r.get("state") and not calls:
        return None                    # a stateful forward (a hidden state it keeps)
    if calls:
        c = calls[0]
        why = (f"{c['module']} ({c['type']}) is in training mode at evaluation, as Monte Carlo "
               "dropout wants" if c["training"] and c["registered"] else
               f"it samples in eval mode: {c['op']} at {c['where']} in {c['module']}, as a "
               "VAE's reparameterisation or a sampler does by design")
    else:
        why = "no random operation was seen, so the cause is not named (a nondeterministic " \
              "GPU kernel, or state kept outside the model)"
    return finding(
        "info", "Eval outputs are not repeatable",
        message=(f"{model} was run twice in eval mode on {loader} and {gap}: "
                 f"{why}. Held-out metrics then vary from run to run."),
        fix="Fine if intended; for repeatable evaluation use the mean (e.g. mu instead of a "
            "sample) or a fixed generator in eval mode.",
        where=(calls[0]["module"] if calls else model), evidence=evidence)
