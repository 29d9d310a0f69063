# expect: 11=warning
# A wide MLP on 150 digits with Adam and no regularisation, evaluated every epoch: the
# held-out loss climbs for many epochs while the held-out accuracy holds.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
train_dl = DataLoader(TensorDataset(X[:150], y[:150]), batch_size=30, shuffle=True)
val_dl = DataLoader(TensorDataset(X[1000:1500], y[1000:1500]), batch_size=250)
model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(25):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            model(xb)
