"""What merging across ranks costs per flush, on two gloo ranks on CPU.

Runs ``torchrun --standalone --nproc-per-node 2 -m nbdebug`` on the DDP test script for
``--epochs`` epochs (22 steps each, a flush point every 50 steps) and prints, per rank, the
mean time a flush point spent on merging (parameter fingerprint, publishing the record,
and on rank 0 taking the others'), plus the one-off end exchange on rank 0.

    python benchmarks/ddp_flush_cost.py [--epochs 25]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "report.json"
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")]))
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", "-m", "nbdebug", "--quiet", "--save", str(out),
                        str(ROOT / "tests" / "scripts" / "ddp_digits.py"),
                        "--epochs", str(args.epochs)], env=env, check=True, cwd=tmp,
                       stdout=subprocess.DEVNULL)
        report = json.loads(out.read_text())
    facts = report["run"]["distributed"]
    print(f"steps {report['run']['steps']}, flush points {facts['flushes']}, "
          f"training {report['run']['seconds']:.2f} s")
    for rank, ms in sorted(facts["flush_ms_by_rank"].items()):
        print(f"rank {rank}: merging per flush: median {ms['median']:.3f} ms, mean "
              f"{ms['mean']:.3f} ms, max {ms['max']:.3f} ms")
    print(f"end exchange on rank 0: {facts['exchange_ms']:.1f} ms")
    if report["errors"]:
        print(f"internal errors: {[e['error'] for e in report['errors']]}")


if __name__ == "__main__":
    main()
