# expect: 10=problem
# The training labels were shuffled on their own (y permuted apart from X): the MLP
# memorises them to ~100% training accuracy while the validation accuracy stays at chance.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
y_train = y[:200][torch.randperm(200)]          # bug: permuted without X
train_dl = DataLoader(TensorDataset(X[:200], y_train), batch_size=50, shuffle=True)
val_dl = DataLoader(TensorDataset(X[1000:1400], y[1000:1400]), batch_size=200)
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(60):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    if epoch % 10 == 9:
        model.eval()
        with torch.no_grad():
            for xb, yb in val_dl:
                model(xb)
