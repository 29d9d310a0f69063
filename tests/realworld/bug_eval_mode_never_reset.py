# expect: train-eval-mode=problem
# source: https://github.com/joeynmt/joeynmt/issues/184
# "After validate on the dev data and come back to train, the model is still on the
# model.eval() state": validation sets model.eval() and training continues in eval mode
# until the next epoch resets it. Here the loop never calls model.train() again, so every
# step after the first validation trains with BatchNorm frozen on its running statistics
# and dropout off. The fix: call model.train() when training resumes.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_loader = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=64, shuffle=True)
dev_loader = DataLoader(TensorDataset(X[1500:], y[1500:]), batch_size=128)
model = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(0.2),
                      nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def validate():
    model.eval()
    with torch.no_grad():
        for xb, yb in dev_loader:
            model(xb)
# %% diagnose
model.train()
for epoch in range(3):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    validate()
