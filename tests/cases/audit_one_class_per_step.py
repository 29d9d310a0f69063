# expect: 7=problem
# Hand-made batches: each step picks one class at random and trains on samples of it
# (a per-class curriculum gone wrong), synthetic blobs with a custom module.
import torch
from torch import nn

torch.manual_seed(0)
centers = torch.randn(4, 6) * 3
X = torch.cat([centers[c] + torch.randn(100, 6) for c in range(4)])
y = torch.arange(4).repeat_interleave(100)


class Blobs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 16)
        self.b = nn.Linear(16, 4)

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


m = Blobs()
opt = torch.optim.Adam(m.parameters(), lr=1e-2)
# %% diagnose
for step in range(40):
    c = int(torch.randint(0, 4, ()))
    idx = c * 100 + torch.randint(0, 100, (20,))
    loss = nn.functional.cross_entropy(m(X[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
