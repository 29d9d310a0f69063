# expect: 16=ok
# notes: 16
# A DataLoader with batch_size=512 over 1000 synthetic samples: two steps an epoch.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
feats = torch.randn(1000, 5)
out = (feats @ torch.randn(5) > 0).long()
big = DataLoader(TensorDataset(feats, out), batch_size=512, shuffle=True)
clf = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.Adam(clf.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(5):
    for xb, yb in big:
        opt.zero_grad()
        nn.functional.cross_entropy(clf(xb), yb).backward()
        opt.step()
