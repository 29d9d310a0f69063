# expect: 4=problem
# A custom forward applies F.relu to the logits before F.cross_entropy.
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
X = torch.randn(600, 8)
y = (X[:, 0] * 2 + X[:, 1] > 0).long() + (X[:, 2] > 1).long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(8, 32)
        self.out = nn.Linear(32, 3)

    def forward(self, x):
        return F.relu(self.out(F.relu(self.body(x))))


clf = Net()
opt = torch.optim.Adam(clf.parameters(), lr=3e-3)
# %% diagnose
for step in range(30):
    idx = torch.randint(0, 600, (50,))
    loss = F.cross_entropy(clf(X[idx]), y[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
