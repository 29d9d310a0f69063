"""Silent errors a loss curve hides: data workers that draw the same random numbers."""

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
