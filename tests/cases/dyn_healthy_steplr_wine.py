# healthy
# Wine with a StepLR schedule, weight decay, and a validation loop in eval mode each epoch.
import torch
from sklearn.datasets import load_wine
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_wine()
perm = torch.randperm(178)
X = torch.tensor(d.data, dtype=torch.float32)[perm]
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(d.target)[perm]
train_dl = DataLoader(TensorDataset(X[:130], y[:130]), batch_size=16, shuffle=True)
val_dl = DataLoader(TensorDataset(X[130:], y[130:]), batch_size=48)
net = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
# %% diagnose
for epoch in range(8):
    net.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    sched.step()
    net.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            net(xb)
