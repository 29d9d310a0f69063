"""Writes notebooks/quickstart.ipynb (no outputs) from the cells below.

Kept as code so the notebook's source is reviewable in diffs; run it after editing.
"""

from __future__ import annotations

from notebook_writer import write

CELLS = [
    ("md", """# nbdebug quickstart

A small classifier on scikit-learn's bundled handwritten digits, trained twice: first with
two mistakes that are easy to make and hard to see (and plain SGD, which the article
advises against), then fixed. `%%diagnose` above the
training cell finds the model, optimizer, data loader and loss by itself and checks the
training against the twenty points of the debugging article."""),
    ("code", "%load_ext nbdebug"),
    ("code", """import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)          # standardised pixels
y = torch.tensor(digits.target)
order = torch.argsort(y, stable=True)             # a data set saved sorted by class
train_set = TensorDataset(X[order], y[order])"""),
    ("md", """## A first training, with two planted mistakes and one questionable choice

- the training loader does not shuffle a data set that is sorted by class (point 6);
- the hidden layer's weights start at zero (point 17);
- plain SGD without momentum (point 8): advice in the article, so nbdebug notes it as
  `info` unless the run shows it stalls; here the other two mistakes explain the run."""),
    ("code", """train_loader = DataLoader(train_set, batch_size=32)          # no shuffle
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
nn.init.zeros_(model[0].weight)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
criterion = nn.CrossEntropyLoss()"""),
    ("code", """%%diagnose --save build/quickstart-report.json
for epoch in range(5):
    for xb, yb in train_loader:
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()"""),
    ("md", """## The same training, fixed

Shuffle every epoch, keep PyTorch's default (Kaiming-uniform) initialisation, and use SGD
with momentum. The diagnosis comes out clean."""),
    ("code", """torch.manual_seed(0)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)"""),
    ("code", """%%diagnose --save build/quickstart-fixed.json
for epoch in range(5):
    for xb, yb in train_loader:
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()"""),
]


if __name__ == "__main__":
    write(CELLS, "quickstart.ipynb")
