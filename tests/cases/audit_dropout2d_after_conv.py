# expect: 15=ok
# notes: 15
# Sequential CNN with Dropout2d(p=0.5) right after each conv block.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
pics = torch.randn(128, 3, 8, 8)
tags = (pics[:, 1].mean((1, 2)) > 0).long()
loader = DataLoader(TensorDataset(pics, tags), batch_size=32, shuffle=True)
model = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5),
    nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for x, t in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), t).backward()
        opt.step()
