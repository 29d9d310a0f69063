# expect: stuck=problem
# Raw wine features (values up to ~1700) into a tanh layer: every tanh unit sits at +-1,
# passes no gradient, and the loss never improves.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_wine()
X = torch.tensor(d.data, dtype=torch.float32)
y = torch.tensor(d.target)
loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
mlp = nn.Sequential(nn.Linear(13, 32), nn.Tanh(), nn.Linear(32, 3))
opt = torch.optim.SGD(mlp.parameters(), lr=1e-3, momentum=0.9)
# %% diagnose
for epoch in range(6):
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(mlp(xb), yb).backward()
        opt.step()
