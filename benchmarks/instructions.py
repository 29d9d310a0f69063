"""nbdebug's cost in instructions executed, per kind of step: a count that does not move
with the machine's load, to compare two trees where wall-clock ratios drift by more than
the change (valgrind's callgrind counts them; needs valgrind, its headers and a C
compiler, and takes about five minutes a run).

    python benchmarks/instructions.py [--model mlp] [--steps 627]

The bare loop and the default run in one process under callgrind, each step counted on
its own (a client request between steps); the sampling is pinned (a full sample costing
three steps, the longest flush window) so that both trees sample the same steps. Steps are
grouped as ``profile_steps.py`` groups time: the first ten, full samples and the steps
before and after them, light samples with the step before, the first and last batches of
an epoch, flushes, steady steps; and the cell's start and end. Instructions are not time:
on this kind of code a wall-clock microsecond holds three to four times fewer of nbdebug's
instructions than of the training's.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HELPER = r"""
#include <valgrind/callgrind.h>
void start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void dump(const char* what) { CALLGRIND_DUMP_STATS_AT(what); }
"""


def measure(model_name: str, steps: int, helper: str, out: str) -> None:
    """Inside valgrind: a bare run and a default one, a dump after each step."""
    import math

    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import overhead as bench

    import nbdebug
    from nbdebug.capture import sampling as S

    def adapt(self: S.Sampling, step: int) -> None:        # a full sample: three steps
        if self._sampled_steps < 2 or self._lean_steps < 5:
            return
        base = self.every

        def cap(samples: int) -> int:
            return max(base, min(S.MAX_INTERVAL, step // samples) // base * base)
        need = 3.0 / S.SAMPLED_BUDGET
        self.interval = int(min(cap(S.MIN_FULL), max(base, base * math.ceil(need / base))))
        self.light = min(cap(S.MIN_SAMPLES), self.interval)

    def flushed(self: S.Flushes, took: float, steps: int, training: float) -> None:
        self._seconds += took
        self._count += 1
        self.window = S.MAX_WINDOW
    S.Sampling._adapt = adapt                 # type: ignore[method-assign]
    S.Flushes.flushed = flushed               # type: ignore[method-assign]
    lib = ctypes.CDLL(helper)
    torch.set_num_threads(1)

    def run(diag: bool, counted: bool, kinds: list | None = None) -> None:
        torch.manual_seed(0)
        model, X, y = bench.make(model_name)
        loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        tag = "d" if diag else "b"

        def mark(what: str) -> None:
            if counted:
                lib.dump(f"{tag} {what}".encode())
        if counted:
            lib.dump(b"-")
        ctx = nbdebug.diagnose(quiet=True) if diag else contextlib.nullcontext()
        ctx.__enter__()
        cap = getattr(ctx, "capture", None)
        mark("enter")
        step = 0
        while step < steps:
            for j, (xb, yb) in enumerate(loader):
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                mark(f"step {step - 1}")
                if cap is not None and kinds is not None:
                    kinds.append((j, cap.flushes._count, cap.sampler.light_steps,
                                  cap.sampler._sampled_steps))
                if step >= steps:
                    break
        ctx.__exit__(None, None, None)
        mark("exit")
    run(False, False)                                   # imports, first calls
    run(True, False)
    lib.start()
    kinds: list = []
    run(False, True)
    run(True, True, kinds)
    with open(out + ".kinds", "w") as fh:
        json.dump(kinds, fh)


def counts(out: str) -> dict[str, int]:
    found = {}
    for path in glob.glob(out + ".*"):
        what = total = None
        with open(path) as fh:
            for line in fh:
                if line.startswith("desc: Trigger: Client Request: "):
                    what = line.split(": ", 3)[-1].strip()
                elif line.startswith(("totals:", "summary:")):
                    total = int(line.split()[1])
        if what and total is not None:
            found[what] = total
    return found


def table(found: dict[str, int], kinds: list) -> str:
    n = len(kinds)
    extra = [found[f"d step {i}"] - found[f"b step {i}"] for i in range(n)]
    changed = [set(), set(), set()]             # flush, light, full: the steps that took one
    for i in range(1, n):
        for k in range(3):
            if kinds[i][k + 1] != kinds[i - 1][k + 1]:
                changed[k].add(i)
    flush, light, full = changed
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i in range(n):
        j = kinds[i][0]
        if i < 10:
            g = "first ten"
        elif i in flush:
            g = "flush"
        elif i in full:
            g = "full sample"
        elif i + 1 in full:
            g = "before a full sample"
        elif i in light or i + 1 in light:
            g = "light sample, with the step before"
        elif j == 0:
            g = "epoch's first"
        elif i + 1 < n and kinds[i + 1][0] == 0:
            g = "epoch's last"
        elif i - 1 in full:
            g = "after a full sample"
        else:
            g = "steady"
        groups[g].append(extra[i])
    bare = sum(found[f"b step {i}"] for i in range(n))
    ends = {"start": found["d enter"] - found["b enter"],
            "end": found["d exit"] - found["b exit"]}
    total = sum(extra) + sum(ends.values())
    lines = [(f"bare loop {bare / 1e6:.1f} M instructions ({n} steps); nbdebug "
              f"{total / 1e6:.2f} M = {total / bare:.2%} of it"), "",
             "| steps | count | M instructions | share of the bare loop | median per step (k) |",
             "|---|---|---|---|---|"]
    rows = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
    rows += [(k, [v]) for k, v in ends.items()]
    for g, vals in rows:
        med = sorted(vals)[len(vals) // 2]
        lines.append(f"| {g} | {len(vals)} | {sum(vals) / 1e6:.2f} | {sum(vals) / bare:.2%} "
                     f"| {med / 1e3:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--steps", type=int, default=627)
    ap.add_argument("--inside", nargs=2, help=argparse.SUPPRESS)    # (helper, out)
    args = ap.parse_args(argv)
    if args.inside:
        measure(args.model, args.steps, *args.inside)
        return 0
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    if missing:
        print(f"instructions.py needs valgrind and a C compiler; missing: "
              f"{', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        helper = os.path.join(tmp, "marks.so")
        with open(os.path.join(tmp, "marks.c"), "w") as fh:
            fh.write(HELPER)
        built = subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", helper,
                                os.path.join(tmp, "marks.c")], capture_output=True)
        if built.returncode:            # (valgrind's headers are where the compiler looks)
            print("instructions.py could not build its marker (are valgrind's headers, "
                  "valgrind/callgrind.h, installed?)", file=sys.stderr)
            return 2
        out = os.path.join(tmp, "counts")
        env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
        subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                        "--collect-atstart=no", f"--callgrind-out-file={out}",
                        sys.executable, os.path.abspath(__file__), "--model", args.model,
                        "--steps", str(args.steps), "--inside", helper, out],
                       check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(out + ".kinds") as fh:
            kinds = json.load(fh)
        print(f"{args.model}, {args.steps} steps, batch 32, 1 thread\n")
        print(table(counts(out), kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
