# expect: 7=problem 6=ok
# A class-bucketed batch sampler: every batch is drawn from one class (buckets in a
# random order each epoch), digits data.
import random

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset
from sklearn.datasets import load_digits


class ClassBuckets(Sampler):
    def __init__(self, labels, batch_size):
        self.buckets = {}
        for i, c in enumerate(labels.tolist()):
            self.buckets.setdefault(c, []).append(i)
        self.batch_size = batch_size

    def __iter__(self):
        batches = []
        for idx in self.buckets.values():
            idx = idx[:]
            random.shuffle(idx)
            batches += [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        random.shuffle(batches)
        return iter(batches)

    def __len__(self):
        return sum(-(-len(v) // self.batch_size) for v in self.buckets.values())


random.seed(0)
torch.manual_seed(0)
dg = load_digits()
X = torch.tensor(dg.data / 16.0, dtype=torch.float32)
y = torch.tensor(dg.target)
train_loader = DataLoader(TensorDataset(X, y), batch_sampler=ClassBuckets(y, 32))
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(1):
    for xb, yb in train_loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
