# healthy
# A GRU regressor with a OneCycle schedule (lr rises 25x, then decays) and gradient
# accumulation over two micro-batches per step.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(512, 12, 3)
y = X[:, :, 0].cumsum(1)[:, -1:] / 4


class Reg(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 24, batch_first=True)
        self.fc = nn.Linear(24, 1)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


reg = Reg()
opt = torch.optim.Adam(reg.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=64)
# %% diagnose
for epoch in range(4):
    for i in range(0, 512, 32):
        opt.zero_grad()
        for j in (i, i + 16):
            (nn.functional.mse_loss(reg(X[j:j + 16]), y[j:j + 16]) / 2).backward()
        opt.step()
        sched.step()
