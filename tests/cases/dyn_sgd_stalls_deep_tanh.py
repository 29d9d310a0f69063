# expect: 8=warning
# A deep, narrow tanh MLP on digits trained with plain SGD (lr=0.01, momentum 0): the loss
# crawls from ln(10) and barely moves in two epochs. Momentum (with the lr scaled so the
# step stays the same size, raised as far as the run's tiny updates show) gets it moving.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
layers = [nn.Linear(64, 32), nn.Tanh()]
for _ in range(5):
    layers += [nn.Linear(32, 32), nn.Tanh()]
deep = nn.Sequential(*layers, nn.Linear(32, 10))
opt = torch.optim.SGD(deep.parameters(), lr=0.01)
# %% diagnose
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(deep(xb), yb).backward()
        opt.step()
