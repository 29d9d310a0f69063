# expect: 12=warning
# An MLP with BatchNorm1d trained in batches of 2 on four classes (the quadrant of two of
# ten features), validated in eval mode every epoch. With two samples per batch each
# feature BatchNorm sees is normalised to -1 and +1: the training forward keeps only which
# sample of the pair is larger, so the training accuracy (train mode) stays far below what
# the same model reaches on held-out data in eval mode, with the running statistics.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(1200, 10)
y = (2 * (X[:, 0] > 0) + (X[:, 1] > 0)).long()
train_loader = DataLoader(TensorDataset(X[:400], y[:400]), batch_size=2, shuffle=True)
val_loader = DataLoader(TensorDataset(X[800:], y[800:]), batch_size=100)
bn_mlp = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
opt = torch.optim.Adam(bn_mlp.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(3):
    bn_mlp.train()
    for xb, yb in train_loader:
        opt.zero_grad()
        nn.functional.cross_entropy(bn_mlp(xb), yb).backward()
        opt.step()
    bn_mlp.eval()
    with torch.no_grad():
        for xb, yb in val_loader:
            bn_mlp(xb)
