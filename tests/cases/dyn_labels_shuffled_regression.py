# expect: 10=problem
# A regression whose training targets were shuffled apart from their samples: a wide MLP
# memorises them (training loss near 0) while the validation error never beats the mean.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(160, 6)
w = torch.randn(6, 1)
y = X @ w + 0.05 * torch.randn(160, 1)
y_train = y[:128][torch.randperm(128)]          # the bug: targets shuffled on their own
train_dl = DataLoader(TensorDataset(X[:128], y_train), batch_size=128, shuffle=True)
val_dl = DataLoader(TensorDataset(X[128:], y[128:]), batch_size=32)
reg = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                    nn.Linear(256, 1))
opt = torch.optim.Adam(reg.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(300):
    reg.train()
    for xb, yb in train_dl:
        loss = nn.functional.mse_loss(reg(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if epoch % 50 == 49:
        reg.eval()
        with torch.no_grad():
            for xb, yb in val_dl:
                reg(xb)
