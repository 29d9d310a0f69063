# expect: 13=problem
# A hand-written feature normalisation divides by the per-batch std of each feature; one
# feature is constant, its std is 0, and 0/0 gives NaN inside the model's forward.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 6)
X[:, 5] = 1.0                                    # a constant column
y = (X[:, 0] > 0).long()


class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        x = (x - x.mean(0)) / x.std(0)
        return self.fc2(torch.relu(self.fc1(x)))


model = Scaled()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for i in range(0, 256, 32):
    opt.zero_grad()
    nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32]).backward()
    opt.step()
