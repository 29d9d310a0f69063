"""A script with two planted bugs: label-sorted data never shuffled, plain SGD.

Prints what a script can check about how it was run: its argv and its __name__, and that
a class defined here pickles (it needs sys.modules["__main__"] to be this script).
Arguments: [--epochs N] [--fail] [--exit CODE]
"""
import argparse
import pickle
import sys

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class Config:
    lr = 0.05


print("argv", sys.argv)
print("name", __name__)
print("pickled", type(pickle.loads(pickle.dumps(Config()))).__name__)
parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--fail", action="store_true")
parser.add_argument("--exit", default=None)
args = parser.parse_args()

torch.manual_seed(0)
y = torch.arange(3).repeat_interleave(50)          # sorted by class, like the iris file
X = torch.randn(150, 4) + torch.eye(3, 4)[y] * 2
X = (X - X.mean(0)) / X.std(0)
loader = DataLoader(TensorDataset(X, y), batch_size=10)
clf = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
sgd = torch.optim.SGD(clf.parameters(), lr=Config.lr)
for epoch in range(args.epochs):
    for features, labels in loader:
        sgd.zero_grad()
        nn.functional.cross_entropy(clf(features), labels).backward()
        sgd.step()

if args.fail:
    raise ValueError("planted failure after training")
if args.exit is not None:
    sys.exit(int(args.exit) if args.exit.isdigit() else args.exit)
print("finished")
