# healthy
# expect: 6=ok 7=ok
# notes: 6
# Shuffled once before training, then sliced in the same order every epoch: the
# order repeats but the labels are well mixed, so point 6 is advice only.
import torch
from torch import nn
from sklearn.datasets import load_wine

torch.manual_seed(0)
wine = load_wine()
X = torch.tensor(wine.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(wine.target)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(3):
    for i in range(0, 176, 16):
        loss = nn.functional.cross_entropy(net(X[i:i + 16]), y[i:i + 16])
        opt.zero_grad()
        loss.backward()
        opt.step()
