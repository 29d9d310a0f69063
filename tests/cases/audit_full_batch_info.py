# expect: 16=ok
# notes: 16
# Full-batch training on iris: the whole data set is one batch at every step.
import torch
from torch import nn
from sklearn.datasets import load_iris

torch.manual_seed(0)
ir = load_iris()
X = torch.tensor(ir.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(ir.target)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
# %% diagnose
for step in range(30):
    loss = nn.functional.cross_entropy(model(X), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
