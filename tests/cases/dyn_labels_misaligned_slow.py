# expect: 10=warning
# Labels shuffled apart from their images in a binary task (digit >= 5), plain training
# that never gets far: the training accuracy creeps from ~49% to ~56% by memorising while
# the validation accuracy stays at chance. The "train near 100%" sign never shows; the
# slow climb with a held-out set that does not follow is the sign (as in a forum report of
# "train 58%, val 50%" after a dataset's images and labels were sorted differently).
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = (torch.tensor(d.target) >= 5).long()
order = torch.randperm(len(y))
X, y = X[order], y[order]
y_train = y[:1300][torch.randperm(1300)]          # bug: labels reordered on their own
train_dl = DataLoader(TensorDataset(X[:1300], y_train), batch_size=32, shuffle=True)
val_dl = DataLoader(TensorDataset(X[1300:], y[1300:]), batch_size=256)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
# %% diagnose
for epoch in range(8):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            model(xb)
