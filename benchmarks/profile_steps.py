"""Where nbdebug's per-step cost goes: host time per step of the bare loop; of nbdebug's
interception alone (every hook and wrapper installed, their bodies emptied); of lean steps
(no sampled statistics after the first step); and of the default. Then nbdebug's own
functions by time under cProfile.

Each figure is the least of ``--repeats`` interleaved runs (garbage collected before each):
on a shared machine the minimum is what stays put from run to run.

    python benchmarks/profile_steps.py [--device cpu|cuda] [--models mlp,cnn] [--repeats 8]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import overhead as bench  # noqa: E402

from nbdebug.capture import core  # noqa: E402

#: the bodies run by lean steps; "interception only" replaces them with no-ops
LEAN_BODIES = ("_lean_forward", "_lean_step", "_on_backward", "_on_loss")


def _timed(name: str, steps: int, config: bench.Config, hollow: bool) -> float:
    saved = {a: getattr(core.Capture, a) for a in LEAN_BODIES}
    if hollow:
        for a in LEAN_BODIES:
            setattr(core.Capture, a, lambda *args, **kwargs: None)
    gc.collect()
    try:
        return bench.train(name, steps, config) / steps * 1e6
    finally:
        for a, f in saved.items():
            setattr(core.Capture, a, f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=8)
    args = ap.parse_args(argv)
    bench.DEVICE = torch.device(args.device)
    torch.set_num_threads(1)
    configs = {"bare": (bench.Config, False),
               "interception only": (lambda: bench.Nbdebug(every=10**6), True),
               "lean steps only": (lambda: bench.Nbdebug(every=10**6), False),
               "default": (bench.Nbdebug, False)}
    for name in args.models.split(","):
        bench.train(name, 60, bench.Config())
        bench.train(name, 60, bench.Nbdebug())
        best = dict.fromkeys(configs, float("inf"))
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            for key, (make, hollow) in configs.items():
                best[key] = min(best[key], _timed(name, args.steps, make(), hollow))
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
