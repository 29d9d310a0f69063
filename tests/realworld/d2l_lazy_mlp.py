# healthy
# source: d2l-ai/d2l-en, chapter_builders-guide/lazy-init.md and mlp-implementation.md (PyTorch)
# The d2l 2nd edition builds its models from lazy layers: nn.LazyLinear(256), ReLU,
# nn.LazyLinear(10); the shapes are inferred by a first forward pass on a batch (the
# book's apply_init does this dry run), then training with CrossEntropyLoss and
# SGD(lr=0.1), batch 256. Offline: scikit-learn's digits.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=256, shuffle=True)
net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))
net(next(iter(train_iter))[0])                      # the dry run that creates the weights
loss = nn.CrossEntropyLoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
# %% diagnose
for epoch in range(8):
    for X_b, y_b in train_iter:
        trainer.zero_grad()
        loss(net(X_b), y_b).backward()
        trainer.step()
