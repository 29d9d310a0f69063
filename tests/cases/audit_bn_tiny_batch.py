# expect: 12=ok
# notes: 14 12
# A CNN with BatchNorm2d trained with batches of 4 (synthetic images).
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
x_all = torch.randn(64, 1, 10, 10)
y_all = (x_all.mean((1, 2, 3)) > 0).long()
tiny = DataLoader(TensorDataset(x_all, y_all), batch_size=4, shuffle=True)
net = nn.Sequential(nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for xb, yb in tiny:
    opt.zero_grad()
    nn.functional.cross_entropy(net(xb), yb).backward()
    opt.step()
