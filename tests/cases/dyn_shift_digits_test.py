# expect: 19=warning
# Validation split taken from the training pool; the "test" scans come from another scanner
# (inverted, brighter pixels). Validation accuracy is high, test accuracy far lower.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32) / 16.0
y = torch.tensor(d.target)
X_test = 1.0 - X[1400:] * 0.7                      # another distribution
train_dl = DataLoader(TensorDataset(X[:1100], y[:1100]), batch_size=64, shuffle=True)
val_dl = DataLoader(TensorDataset(X[1100:1400], y[1100:1400]), batch_size=150)
test_dl = DataLoader(TensorDataset(X_test, y[1400:]), batch_size=150)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(5):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
model.eval()
with torch.no_grad():
    for loader in (val_dl, test_dl):
        for xb, yb in loader:
            model(xb)
