"""Where nbdebug's per-step cost goes: host time per step of the bare loop; of the steady
steps' interception alone (a forward hook on the model's root and the ``Tensor.backward``
wrapper, both as nbdebug installs them, their bodies empty); of steady steps (no sampled
statistics after the warm-up); and of the default. Then nbdebug's own functions by time
under cProfile.

Each figure is the least of ``--repeats`` interleaved runs (garbage collected before each):
on a shared machine the minimum is what stays put from run to run.

    python benchmarks/profile_steps.py [--device cpu|cuda] [--models mlp,cnn] [--repeats 8]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import overhead as bench  # noqa: E402

from nbdebug.capture.context import Guard  # noqa: E402
from nbdebug.capture.patches import ModuleHook, Patches  # noqa: E402
from nbdebug.errors import ErrorLog  # noqa: E402


class Interception(bench.Config):
    """A steady step's two interception points with empty bodies."""

    name = "steady interception only"

    def prepare(self, model):
        self.model = model
        return model

    @contextlib.contextmanager
    def context(self):
        guard, patches = Guard(ErrorLog()), Patches()

        def noop(*args):
            return None
        patches.handle(self.model.register_forward_hook(ModuleHook(guard.hook(noop))))
        patches.wrap(torch.Tensor, "backward", guard, before=lambda a, k: None,
                     reentrant=False, steady=True)
        try:
            yield
        finally:
            patches.remove_all()


def _timed(name: str, steps: int, config: bench.Config) -> float:
    gc.collect()
    return bench.train(name, steps, config) / steps * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args(argv)
    bench.DEVICE = torch.device(args.device)
    torch.set_num_threads(1)
    configs = {"bare": bench.Config,
               "steady interception only": Interception,
               "steady steps (no sampling)": lambda: bench.Nbdebug(every=10**6),
               "default": bench.Nbdebug}
    for name in args.models.split(","):
        bench.train(name, 60, bench.Config())
        bench.train(name, 60, bench.Nbdebug())
        best = dict.fromkeys(configs, float("inf"))
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            for key, make in configs.items():
                best[key] = min(best[key], _timed(name, args.steps, make()))
        bare = best.pop("bare")
        extra = ", ".join(f"{k} {v - bare:+.0f} ({(v - bare) / bare:+.1%})"
                          for k, v in best.items())
        print(f"{name} on {args.device}: bare {bare:.0f} us/step; extra per step: {extra} "
              f"[{time.perf_counter() - t0:.0f} s]", flush=True)
        prof = cProfile.Profile()
        prof.enable()
        bench.train(name, args.steps, bench.Nbdebug())
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        print("\n".join(line[:150] for line in out.getvalue().splitlines() if line.strip()))
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
