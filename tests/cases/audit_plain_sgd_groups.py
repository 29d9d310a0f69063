# expect: 8=ok 2=ok
# notes: 8
# Regression with two SGD param groups (a slower lr for the first layer), momentum 0.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from sklearn.datasets import load_diabetes

torch.manual_seed(0)
db = load_diabetes()
X = torch.tensor(db.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
target = torch.tensor(db.target, dtype=torch.float32)
target = (target - target.mean()) / target.std()


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(10, 32)
        self.last = nn.Linear(32, 1)

    def forward(self, x):
        return self.last(torch.relu(self.first(x))).squeeze(-1)


reg = Reg()
optim = torch.optim.SGD([{"params": reg.first.parameters(), "lr": 0.01},
                         {"params": reg.last.parameters()}], lr=0.05)
# %% diagnose
for epoch in range(3):
    perm = torch.randperm(len(target))
    for i in range(0, len(target), 32):
        b = perm[i:i + 32]
        loss = nn.functional.mse_loss(reg(X[b]), target[b])
        optim.zero_grad()
        loss.backward()
        optim.step()
