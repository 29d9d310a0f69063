"""Silent errors a loss curve hides: data workers that draw the same random numbers, and
dropout left on while the model evaluates."""

from __future__ import annotations

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, check


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
    return [Finding(
        check="worker-seeds", point="workers", severity="warning",
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
    return [Finding(
        check="eval-dropout", point="train-eval-mode", severity="warning",
        title="Dropout on in eval mode",
        message=(f"{first['call']} with p={first['p']:g} ran with training on at "
                 f"{first['where']} while the model was in eval mode and gradients were off: "
                 "model.eval() does not reach a functional dropout, so held-out outputs are "
                 "random and their loss and accuracy are off."),
        fix=fix, where=first["where"], evidence={"calls": calls})]
