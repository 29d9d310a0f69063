# expect: 18=ok
# notes: 18
# A Sequential MLP built with bias=False everywhere, no normalisation layer.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_wine

torch.manual_seed(0)
wn = load_wine()
X = torch.tensor(wn.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(wn.target)
loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
mlp = nn.Sequential(nn.Linear(13, 32, bias=False), nn.ReLU(), nn.Linear(32, 3, bias=False))
opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(mlp(xb), yb).backward()
        opt.step()
