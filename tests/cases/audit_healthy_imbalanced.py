# healthy
# expect: 7=ok 6=ok
# A 95/5 imbalanced binary problem in shuffled batches of 8: many batches hold one
# class by chance, as random batches would; no single-label alarm.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
n = 400
y = (torch.rand(n) < 0.05).long()
X = torch.randn(n, 6) + y.unsqueeze(1) * 1.5
X = (X - X.mean(0)) / X.std(0)
dl = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
clf = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
# %% diagnose
for xb, yb in dl:
    opt.zero_grad()
    nn.functional.cross_entropy(clf(xb), yb).backward()
    opt.step()
