# expect: 18=warning
# Points inside or outside a ring around the origin, classified by an MLP built with
# bias=False everywhere: without biases a ReLU net gives the same answer along every ray
# from the origin, so it cannot tell the inside from the outside and the loss stays near
# ln(2). Adam, 30 epochs.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(512, 2)
y = (X.norm(dim=1) < 1.18).long()
ring = nn.Sequential(nn.Linear(2, 32, bias=False), nn.ReLU(), nn.Linear(32, 32, bias=False),
                     nn.ReLU(), nn.Linear(32, 2, bias=False))
opt = torch.optim.Adam(ring.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(30):
    perm = torch.randperm(512)
    for i in range(0, 512, 64):
        idx = perm[i:i + 64]
        opt.zero_grad()
        nn.functional.cross_entropy(ring(X[idx]), y[idx]).backward()
        opt.step()
