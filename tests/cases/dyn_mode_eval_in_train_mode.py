# expect: train-eval-mode=warning
# The validation loop runs under torch.no_grad() but the model stays in train mode:
# Dropout keeps dropping units, the held-out numbers are noisy and too low.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_wine()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(d.target)
perm = torch.randperm(178)
X, y = X[perm], y[perm]
train_dl = DataLoader(TensorDataset(X[:130], y[:130]), batch_size=16, shuffle=True)
val_dl = DataLoader(TensorDataset(X[130:], y[130:]), batch_size=48)
net = nn.Sequential(nn.Linear(13, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(6):
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    with torch.no_grad():                       # bug: no net.eval()
        for xb, yb in val_dl:
            net(xb)
