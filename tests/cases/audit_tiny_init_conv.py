# expect: 17=warning
# Conv layers initialised with std 1e-3 (a "small random init"): signals vanish, and over
# ten epochs the loss stays where it started: the init's harm shows, so it is a warning.
import torch
from torch import nn

torch.manual_seed(0)
batch = torch.randn(96, 3, 8, 8)
lab = (batch[:, 2].mean((1, 2)) > 0).long()
convs = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
for m in convs.modules():
    if isinstance(m, nn.Conv2d):
        nn.init.normal_(m.weight, std=1e-3)
opt = torch.optim.Adam(convs.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(10):
    for i in range(0, 96, 32):
        loss = nn.functional.cross_entropy(convs(batch[i:i + 32]), lab[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
