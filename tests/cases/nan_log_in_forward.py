# expect: 13=problem
# A custom forward takes the log of a ReLU output: log(0) = -inf, then NaN.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 10)
y = (X.sum(1) > 0).long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(torch.log(self.act(self.fc1(x))))


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for i in range(0, 256, 32):
    out = net(X[i:i + 32])
    loss = nn.functional.cross_entropy(out, y[i:i + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
