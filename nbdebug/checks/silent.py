"""Silent errors a loss curve hides: data workers that draw the same random numbers,
dropout left on while the model evaluates, and a held-out round that eval mode broke."""

from __future__ import annotations

import math

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, check, finding
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
    calls = obs.dynamics.get(keys.EVAL_DROPOUT) or []
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
