# expect: 9=problem 3=problem
# Regression MLP with plain SGD at lr=0.3: each step overshoots more than the last, the
# gradient norm grows geometrically (6 -> 1e3 -> 1e7) until the loss is Inf.
import torch
from sklearn.datasets import load_diabetes
from torch import nn

torch.manual_seed(0)
d = load_diabetes()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(d.target, dtype=torch.float32).unsqueeze(1) / 100
reg = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 1))
opt = torch.optim.SGD(reg.parameters(), lr=0.3)
# %% diagnose
for epoch in range(2):
    for i in range(0, 440, 40):
        loss = nn.functional.mse_loss(reg(X[i:i + 40]), y[i:i + 40])
        opt.zero_grad()
        loss.backward()
        opt.step()
