# expect: 5=warning
# California-housing-like regression on raw features: a year column and a dollar
# column next to small ratios (synthetic; hand-made batches, MSE loss).
import torch
from torch import nn

torch.manual_seed(0)
n = 800
year = torch.randint(1950, 2020, (n, 1)).float()
income = torch.rand(n, 1) * 150000
rooms = torch.rand(n, 1) * 5 + 1
ratio = torch.rand(n, 1)
features = torch.cat([year, income, rooms, ratio], 1)
price = (income / 50000 + rooms - (2020 - year) / 50).squeeze(1)


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x))).squeeze(1)


reg = Regressor()
opt = torch.optim.Adam(reg.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(n)
    for i in range(0, n, 100):
        b = perm[i:i + 100]
        loss = nn.functional.mse_loss(reg(features[b]), price[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
