# expect: 19=warning
# Wine measurements: validation comes from the same lab as training, the test set from a
# lab whose instruments read in other units (a few features scaled). Val >> test.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_wine()
perm = torch.randperm(178)
X = torch.tensor(d.data, dtype=torch.float32)[perm]
y = torch.tensor(d.target)[perm]
mu, sd = X[:110].mean(0), X[:110].std(0)
X_test = X[140:].clone()
X_test[:, [0, 6, 9, 12]] *= 1.6                    # the other lab's units


def norm(t):
    return (t - mu) / sd


train_dl = DataLoader(TensorDataset(norm(X[:110]), y[:110]), batch_size=16, shuffle=True)
val_dl = DataLoader(TensorDataset(norm(X[110:140]), y[110:140]), batch_size=30)
test_dl = DataLoader(TensorDataset(norm(X_test), y[140:]), batch_size=38)
net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(15):
    net.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        for loader in (val_dl, test_dl):
            for xb, yb in loader:
                net(xb)
