# healthy
# source: d2l-ai/d2l-en, chapter_builders-guide/lazy-init.md (PyTorch)
# The same lazy MLP as d2l_lazy_mlp, but the model is built in the diagnosed cell, so its
# first forward (which creates the weights) happens while nbdebug watches.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=256, shuffle=True)
# %% diagnose
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
net(next(iter(train_iter))[0])
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
for epoch in range(8):
    for X_b, y_b in train_iter:
        trainer.zero_grad()
        nn.functional.cross_entropy(net(X_b), y_b).backward()
        trainer.step()
