"""DDP training on scikit-learn's digits, for two or more ranks (gloo, CPU).

Healthy by default. Switches plant one bug each:
  --no-set-epoch         never call sampler.set_epoch(epoch)
  --poison-rank R        rank R meets a blank (all-zero) sample at step 5: the model's
                         UnitNorm layer divides 0 by 0 (NaN on that rank only)
  --no-ddp               each rank trains its own model (seeded by rank), never synchronised
  --uneven               rank 1 gets a smaller shard than rank 0 (hand-made shards, --no-ddp)
  --batchnorm B          a BatchNorm1d model and a per-rank batch size of B
  --rank1-dies           rank 1 stops dead after training (os._exit), before the end
  --no-destroy           leave the process group up at exit (no destroy_process_group)
  --desync-at S          rank 1 alone changes a parameter in place after step S's update
                         (a rank-local edit of the weights under DDP)
  --allreduce HOW        no DDP: average the gradients by hand with all_reduce, HOW is
                         "grad" (in place on .grad: correct), "copy" (on a clone of .grad
                         whose result is never written back), "copy-back" (the clone, then
                         copied back: correct) or "async" (in place with async_op=True,
                         never waited on)
  --shard K              FSDP: K is "fsdp1" (FullyShardedDataParallel), "fsdp2"
                         (fully_shard on each Linear and the root) or "fsdp2-layers"
                         (fully_shard on the Linears only: the root's own parameter is
                         never averaged)
"""
import argparse
import os

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--no-set-epoch", action="store_true")
parser.add_argument("--poison-rank", type=int, default=None)
parser.add_argument("--no-ddp", action="store_true")
parser.add_argument("--uneven", action="store_true")
parser.add_argument("--batchnorm", type=int, default=None)
parser.add_argument("--rank1-dies", action="store_true")
parser.add_argument("--no-destroy", action="store_true")
parser.add_argument("--desync-at", type=int, default=None)
parser.add_argument("--allreduce", choices=["grad", "copy", "copy-back", "async"])
parser.add_argument("--shard", choices=["fsdp1", "fsdp2", "fsdp2-layers"])
args = parser.parse_args()


class UnitNorm(nn.Module):
    """Scales every sample to the norm sqrt(features)."""

    def forward(self, x):
        return x * x.shape[1] ** 0.5 / x.norm(dim=1, keepdim=True)


class Scale(nn.Module):
    """A learned output scale: a parameter of the root module itself."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.inner(x) * self.scale


def shard(net, how):
    if how == "fsdp1":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        return FSDP(net, device_id=torch.device("cpu"))
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (world,))
    for layer in net.inner:
        if isinstance(layer, nn.Linear):
            fully_shard(layer, mesh=mesh)
    if how == "fsdp2":
        fully_shard(net, mesh=mesh)
    return net


def average(params, how):
    works = []
    for p in params:
        if how == "grad":
            dist.all_reduce(p.grad)
            p.grad /= world
        elif how == "async":     # waited on only after the optimizer has stepped
            works.append(dist.all_reduce(p.grad, async_op=True))
        else:
            g = p.grad.clone()
            dist.all_reduce(g)
            g /= world
            if how == "copy-back":
                p.grad.copy_(g)
    return works


dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(rank if args.no_ddp else 0)

digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(digits.target)
data = TensorDataset(X[:1400], y[:1400])
batch = args.batchnorm or 32
if args.uneven:
    size = 700 if rank == 0 else 500
    start = 0 if rank == 0 else 700
    shard = TensorDataset(X[start:start + size], y[start:start + size])
    loader = DataLoader(shard, batch_size=batch, shuffle=True)
    sampler = None
else:
    sampler = DistributedSampler(data, shuffle=True)
    loader = DataLoader(data, batch_size=batch, sampler=sampler)

if args.batchnorm:
    net = nn.Sequential(UnitNorm(), nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(),
                        nn.Linear(128, 10))
else:
    net = nn.Sequential(UnitNorm(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
if args.shard:
    net = Scale(net)
    model = shard(net, args.shard)
else:
    model = net if args.no_ddp or args.allreduce else DDP(net)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()

step = 0
for epoch in range(args.epochs):
    if sampler is not None and not args.no_set_epoch:
        sampler.set_epoch(epoch)
    for xb, yb in loader:
        if rank == args.poison_rank and step == 5:
            xb = xb.clone()
            xb[0] = 0.0                        # a blank sample in this rank's shard
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        works = average(net.parameters(), args.allreduce) if args.allreduce else []
        optimizer.step()
        for work in works:
            work.wait()
        if rank == 1 and step == args.desync_at:
            with torch.no_grad():
                net[-1].bias.add_(1e-3)           # rank 1 alone: the replicas part here
        step += 1

if args.rank1_dies and rank == 1:
    os._exit(0)
if rank == 0:
    checksum = sum(getattr(p, "_local_tensor", p).double().sum()
                   for p in net.parameters()).item()
    print(f"trained {step} steps on {world} ranks, last loss {loss.item():.17g}, "
          f"parameter checksum {checksum:.17g}")
if not args.no_destroy:
    if not args.rank1_dies:
        dist.barrier()           # tear down together: a rank leaving early can abort the other
    dist.destroy_process_group()
