# expect: 6=problem 8=ok
# notes: 8
# Label-sorted data read by a DataLoader without shuffle, trained with plain SGD.
# Plain SGD shows no harm in this run: point 8 stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_iris

data = load_iris()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)          # the iris file is sorted by class
loader = DataLoader(TensorDataset(X, y), batch_size=10)
clf = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
sgd = torch.optim.SGD(clf.parameters(), lr=0.05)
# %% diagnose
for epoch in range(3):
    for features, labels in loader:
        sgd.zero_grad()
        nn.functional.cross_entropy(clf(features), labels).backward()
        sgd.step()
