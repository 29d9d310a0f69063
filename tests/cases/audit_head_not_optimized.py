# expect: optimizer-params=warning
# A custom model whose optimizer was built from the encoder only: the head (added
# later) gets gradients but never changes.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(200, 8)
y = (X[:, 1] - X[:, 2] > 0).long()


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        return self.head(self.encoder(x))


net = Model()
opt = torch.optim.Adam(net.encoder.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(200)
    for i in range(0, 200, 25):
        b = perm[i:i + 25]
        loss = nn.functional.cross_entropy(net(X[b]), y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
