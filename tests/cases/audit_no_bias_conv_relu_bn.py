# expect: 18=ok 12=ok
# notes: 14 18
# A custom CNN: Conv2d(bias=False) -> ReLU -> BatchNorm. The BatchNorm comes after the
# ReLU, so it cannot stand in for the missing bias.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn

torch.manual_seed(0)
frames = torch.randn(128, 3, 8, 8)
which = (frames[:, 0].mean((1, 2)) > 0).long()


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.bn(self.relu(self.conv(x))).mean((2, 3)))


block = Block()
opt = torch.optim.Adam(block.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(128)
    for i in range(0, 128, 32):
        b = perm[i:i + 32]
        loss = nn.functional.cross_entropy(block(frames[b]), which[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
