# expect: stuck=problem
# A custom forward detaches the hidden features (.detach() left from a debugging session):
# only the last layer learns, the loss stalls far above what the data allows.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(384, 8)
y = ((X[:, 0] * X[:, 1]) > 0).long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        return self.head(self.body(x).detach())


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(6):
    for i in range(0, 384, 32):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
