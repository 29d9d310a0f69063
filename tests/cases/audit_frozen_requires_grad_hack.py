# expect: frozen=problem
# The model was frozen in an earlier cell (requires_grad_(False)); the "fix" for the
# backward error was loss.requires_grad_(True), so nothing trains.
import torch
from torch import nn
from sklearn.datasets import load_iris

torch.manual_seed(0)
iris = load_iris()
X = torch.tensor(iris.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(iris.target)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
net.requires_grad_(False)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(3):
    perm = torch.randperm(150)
    for i in range(0, 150, 30):
        b = perm[i:i + 30]
        loss = nn.functional.cross_entropy(net(X[b]), y[b])
        loss.requires_grad_(True)
        opt.zero_grad()
        loss.backward()
        opt.step()
