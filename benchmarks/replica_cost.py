"""What the per-step replica checksum costs, on two gloo ranks on CPU (DDP, digits MLP).

Run under torchrun:

    torchrun --standalone --nproc-per-node 2 benchmarks/replica_cost.py [--steps 600]

Each rank trains the same DDP model bare, then under ``nbdebug.diagnose``, alternately
(``--repeats`` times), and prints rank 0's medians: a bare step, a diagnosed step, and
the time spent in the replica probe's per-step event (its ``_foreach_norm``), timed
inside the diagnosed run, with its share of a bare step.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

import nbdebug
from nbdebug.capture.probes import replicas


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(digits.target)
    spent = [0.0, 0]
    original = replicas.ReplicaProbe.train_input

    def timed(self, *a):
        t0 = time.perf_counter()
        original(self, *a)
        spent[0] += time.perf_counter() - t0
        spent[1] += 1
    replicas.ReplicaProbe.train_input = timed

    def train(diagnose: bool) -> float:
        torch.manual_seed(0)
        model = DDP(nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)))
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        dist.barrier()

        def loop() -> float:
            t0 = time.perf_counter()
            for step in range(args.steps):
                i = (step * 32) % 1760
                loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
                opt.zero_grad()
                loss.backward()
                opt.step()
            return (time.perf_counter() - t0) / args.steps
        if not diagnose:
            return loop()
        with nbdebug.diagnose(quiet=True):
            return loop()
    bare, watched, probe = [], [], []
    train(False)                                  # warm-up
    for _ in range(args.repeats):
        bare.append(train(False))
        spent[:] = [0.0, 0]
        watched.append(train(True))
        probe.append(spent[0] / max(spent[1], 1))
    if rank == 0:
        b, w, p = (statistics.median(v) * 1e6 for v in (bare, watched, probe))
        print(f"bare step {b:.1f} us, diagnosed step {w:.1f} us (x{w / b:.3f}), replica "
              f"checksum {p:.2f} us per step = {100 * p / b:.2f}% of a bare step")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
