# expect: zero-grad=problem
# The loop zeroes the gradients of a different model (an old "encoder" variable), so the
# GRU's gradients are never reset.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 8, 3)
y = X[:, :, 1].mean(1, keepdim=True)


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 16, batch_first=True)
        self.fc = nn.Linear(16, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


encoder = Reg()
reg = Reg()
opt = torch.optim.Adam(reg.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(4):
    for i in range(0, 256, 32):
        encoder.zero_grad()                     # bug: the wrong model
        nn.functional.mse_loss(reg(X[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
