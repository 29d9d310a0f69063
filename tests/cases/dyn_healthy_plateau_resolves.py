# healthy
# XOR-like data: the loss sits on a long plateau near ln(2) before the tanh net finds the
# solution and the loss drops. A slow start is not a stuck training.
import torch
from torch import nn

torch.manual_seed(3)
X = torch.randn(256, 2)
y = ((X[:, 0] > 0) ^ (X[:, 1] > 0)).long()
net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
with torch.no_grad():
    for p in net.parameters():
        p.mul_(0.1)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(100):
    for i in range(0, 256, 64):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[i:i + 64]), y[i:i + 64]).backward()
        opt.step()
