"""Where nbdebug's per-step cost goes: host time per step of the bare loop, the default,
lean steps only (no sampled statistics), lean steps without flushes, and the share of the
flush; then nbdebug's own functions by time under cProfile.

    python benchmarks/profile_steps.py [--device cpu|cuda] [--models mlp,cnn] [--steps 600]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import overhead as bench  # noqa: E402

from nbdebug.capture import core  # noqa: E402


def per_step(name: str, steps: int, config: bench.Config, repeats: int) -> float:
    """The least host time per step over ``repeats`` runs, in microseconds."""
    best = min(bench.train(name, steps, config) for _ in range(repeats))
    return best / steps * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    bench.DEVICE = torch.device(args.device)
    torch.set_num_threads(1)
    flush_every = core.FLUSH_EVERY
    for name in args.models.split(","):
        bench.train(name, 60, bench.Config())
        bench.train(name, 60, bench.Nbdebug())
        bare = per_step(name, args.steps, bench.Config(), args.repeats)
        default = per_step(name, args.steps, bench.Nbdebug(), args.repeats)
        lean = per_step(name, args.steps, bench.Nbdebug(every=10**6), args.repeats)
        core.FLUSH_EVERY = 10**9
        try:
            lean_noflush = per_step(name, args.steps, bench.Nbdebug(every=10**6), args.repeats)
        finally:
            core.FLUSH_EVERY = flush_every
        print(f"{name} on {args.device}: bare {bare:.0f} us/step; extra over bare: default "
              f"{default - bare:+.0f}, lean steps only {lean - bare:+.0f}, lean without "
              f"flushes {lean_noflush - bare:+.0f} us/step", flush=True)
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
