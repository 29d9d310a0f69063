# expect: zero-grad=problem
# optimizer.zero_grad() is never called: each step adds all past gradients to .grad.
import torch
from sklearn.datasets import load_breast_cancer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_breast_cancer()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(d.target)
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
clf = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(clf.parameters(), lr=0.01, momentum=0.9)
# %% diagnose
for epoch in range(3):
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(clf(xb), yb)
        loss.backward()
        opt.step()
