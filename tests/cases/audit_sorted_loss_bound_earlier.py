# expect: 6=problem 7=problem
# The loss function was bound in an earlier cell (loss_fn = F.cross_entropy) and the
# loader reads label-sorted digits without shuffling: the name bound before the diagnosis
# still reaches nbdebug, which sees the labels of every batch.
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
order = torch.argsort(y, stable=True)
loader = DataLoader(TensorDataset(X[order], y[order]), batch_size=32)
net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
loss_fn = F.cross_entropy
# %% diagnose
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()
