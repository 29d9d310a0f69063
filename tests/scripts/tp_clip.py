"""Tensor-parallel training (DTensor, two ranks on gloo, CPU) with gradient clipping.

The two Linear layers of the block are split across the ranks (column-, then row-wise);
the LayerNorm and the head after them are replicated: every rank holds them whole and
must keep them equal. Every rank trains on the same batches.

  --clip global   (healthy) every rank clips with the norm of all the gradients, the
                  sharded ones' taken whole across the ranks
  --clip rank0    the same clipping, applied on rank 0 only
  --clip local    every rank clips, but with the norm of the shards it holds only
"""
import argparse

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor
from torch.distributed.tensor.parallel import (ColwiseParallel, RowwiseParallel,
                                               parallelize_module)

parser = argparse.ArgumentParser()
parser.add_argument("--clip", choices=["global", "rank0", "local"], default="global")
parser.add_argument("--steps", type=int, default=60)
args = parser.parse_args()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
mesh = init_device_mesh("cpu", (world,))
torch.manual_seed(0)

digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(digits.target)

net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.LayerNorm(64),
                    nn.Linear(64, 10))
parallelize_module(net, mesh, {"0": ColwiseParallel(), "2": RowwiseParallel()})
optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
params = list(net.parameters())
MAX_NORM = 0.5


def total_norm(whole: bool) -> torch.Tensor:
    norms = []
    for p in params:
        g = p.grad
        if isinstance(g, DTensor):
            g = g.full_tensor() if whole else g.to_local()
        norms.append(g.norm())
    return torch.stack(norms).norm()


for step in range(args.steps):
    i = (step * 32) % 1376
    loss = nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
    optimizer.zero_grad()
    loss.backward()
    norm = total_norm(whole=args.clip != "local")   # (every rank: full_tensor gathers)
    if args.clip != "rank0" or rank == 0:
        torch.nn.utils.clip_grads_with_norm_(params, MAX_NORM, norm, foreach=False)
    optimizer.step()

head = net[4].weight.detach().double().sum().item()
if rank == 0:
    print(f"trained {args.steps} steps on {world} ranks, last loss {loss.item():.17g}, "
          f"head checksum {head:.17g}")
dist.barrier()                   # tear down together: a rank leaving early can abort the other
dist.destroy_process_group()
