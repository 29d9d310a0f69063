# expect: 17=problem
# nn.init.zeros_ on the hidden weights of a Sequential MLP.
import torch
from torch import nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
dd = load_digits()
X = torch.tensor(dd.data / 16.0, dtype=torch.float32)
y = torch.tensor(dd.target)
mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
nn.init.zeros_(mlp[0].weight)
nn.init.zeros_(mlp[2].weight)
opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(len(y))
    for i in range(0, len(y), 64):
        b = perm[i:i + 64]
        loss = nn.functional.cross_entropy(mlp(X[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
