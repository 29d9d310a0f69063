# expect: 12=ok
# notes: 14 12
# 65 samples in batches of 32: the last batch holds one sample and reaches the
# BatchNorm layers of a custom 1-D conv model in training mode.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
signals = torch.randn(65, 2, 16)
kind = (signals[:, 0].mean(1) > 0).long()
train_loader = DataLoader(TensorDataset(signals, kind), batch_size=32, shuffle=True)


class SignalNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 8, 3, padding=1)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm1d(8)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.bn(self.act(self.conv(x))).mean(-1))


sig = SignalNet()
opt = torch.optim.Adam(sig.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for xb, yb in train_loader:
        opt.zero_grad()
        nn.functional.cross_entropy(sig(xb), yb).backward()
        opt.step()
