"""DDP on scikit-learn's digits, two ranks on gloo (CPU), started from the script itself.

The ranks are started the way a script without torchrun starts them: ``mp.spawn(train,
args=(world,), nprocs=world)`` by default, or another launcher (``--launcher``):
  spawn                   torch.multiprocessing.spawn (start method "spawn")
  start-processes-fork    torch.multiprocessing.start_processes(..., start_method="fork")
  process-spawn           multiprocessing.get_context("spawn").Process(target=train)
  process-forkserver      the same with the "forkserver" context
  process-fork            the same with the "fork" context

Healthy by default. Switches plant one bug each:
  --no-set-epoch         never call sampler.set_epoch(epoch)
  --no-ddp               each rank trains its own model (seeded by rank), never synchronised
  --poison-rank R        rank R meets a blank (all-zero) sample at step 5: 0/0 in UnitNorm
  --fail-rank R          rank R raises after training
"""
import argparse
import multiprocessing
import os
import socket
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler


def options(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--launcher", default="spawn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--no-set-epoch", action="store_true")
    parser.add_argument("--no-ddp", action="store_true")
    parser.add_argument("--poison-rank", type=int, default=None)
    parser.add_argument("--fail-rank", type=int, default=None)
    return parser.parse_args(argv)


class UnitNorm(nn.Module):
    """Scales every sample to the norm sqrt(features)."""

    def forward(self, x):
        return x * x.shape[1] ** 0.5 / x.norm(dim=1, keepdim=True)


def train(rank, world, args):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank if args.no_ddp else 0)
    digits = load_digits()
    X = torch.tensor(digits.data, dtype=torch.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1e-6)
    y = torch.tensor(digits.target)
    data = TensorDataset(X[:1400], y[:1400])
    sampler = DistributedSampler(data, shuffle=True)
    loader = DataLoader(data, batch_size=32, sampler=sampler)
    net = nn.Sequential(UnitNorm(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    model = net if args.no_ddp else DDP(net)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    for epoch in range(args.epochs):
        if not args.no_set_epoch:
            sampler.set_epoch(epoch)
        for xb, yb in loader:
            if rank == args.poison_rank and step == 5:
                xb = xb.clone()
                xb[0] = 0.0                        # a blank sample in this rank's shard
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    if rank == args.fail_rank:
        raise RuntimeError(f"planted failure on rank {rank}")
    checksum = sum(p.double().sum() for p in net.parameters()).item()
    sys.stdout.write(f"rank {rank} trained {step} steps on {world} ranks, last loss "
                     f"{loss.item():.17g}, parameter checksum {checksum:.17g}\n")  # one write
    sys.stdout.flush()
    if args.fail_rank is None:
        dist.barrier()           # tear down together: a rank leaving early can abort the other
    dist.destroy_process_group()


def main():
    args = options()
    world = 2
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(s.getsockname()[1])
    if args.launcher == "spawn":
        mp.spawn(train, args=(world, args), nprocs=world)
    elif args.launcher == "start-processes-fork":
        mp.start_processes(train, args=(world, args), nprocs=world, start_method="fork")
    else:
        ctx = multiprocessing.get_context(args.launcher.split("-", 1)[1])
        procs = [ctx.Process(target=train, args=(rank, world, args)) for rank in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        codes = [p.exitcode for p in procs]
        if any(codes):
            raise SystemExit(f"a rank failed: exit codes {codes}")


if __name__ == "__main__":
    main()
