# healthy
# XOR-like data with a linear lr warm-up: the loss sits on a plateau near ln(2) for over a
# hundred steps before the tanh net finds the solution and drops. A slow start is not a
# stuck training.
import torch
from torch import nn

torch.manual_seed(1)
X = torch.randn(256, 2)
y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).long()
net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9)
warmup = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 150))
# %% diagnose
for epoch in range(100):
    for i in range(0, 256, 64):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[i:i + 64]), y[i:i + 64]).backward()
        opt.step()
        warmup.step()
