# expect: 2=warning 8=ok
# Tabular MLP on breast cancer data: SGD with momentum and L2 decay 5e-3 on every
# parameter, biases included.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
data = load_breast_cancer()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
mlp = nn.Sequential(nn.Linear(30, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.SGD(mlp.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-3)
criterion = nn.CrossEntropyLoss()
# %% diagnose
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        criterion(mlp(xb), yb).backward()
        opt.step()
