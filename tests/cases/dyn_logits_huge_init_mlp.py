# expect: 1=problem
# An MLP initialised with N(0, 3^2) weights: logits in the hundreds, the first loss far
# above ln(10).
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
train_dl = DataLoader(TensorDataset(X[:1200], y[:1200]), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=3.0)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for xb, yb in train_dl:
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
