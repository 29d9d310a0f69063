# healthy
# expect: 5=ok 16=ok 17=ok
# Flattened 28x28 sparse images normalised with MNIST's mean/std (ToTensor() then
# Normalize((0.1307,), (0.3081,))): constant borders and rarely lit pixels, an MLP with
# Kaiming init: no input-range or init alarm.
import torch
from torch import nn

torch.manual_seed(0)
img = torch.zeros(256, 28, 28)
img[:, 4:24, 4:24] = (torch.rand(256, 20, 20) < 0.1).float() * torch.rand(256, 20, 20)
flat = ((img - 0.1307) / 0.3081).reshape(256, -1)
digit = (img[:, 10:18, 10:18].sum((1, 2)) > 3).long()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 2)
        nn.init.kaiming_normal_(self.fc1.weight, nonlinearity="relu")

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


mlp = MLP()
opt = torch.optim.Adam(mlp.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(256)
    for i in range(0, 256, 64):
        b = perm[i:i + 64]
        loss = nn.functional.cross_entropy(mlp(flat[b]), digit[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
