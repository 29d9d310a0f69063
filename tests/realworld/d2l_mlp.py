# healthy
# source: d2l-ai/d2l-en, chapter_multilayer-perceptrons/mlp-implementation.md (PyTorch)
# The concise MLP: Flatten, Linear(num_inputs, 256), ReLU, Linear(256, 10), weights from
# N(0, 0.01), CrossEntropyLoss, plain SGD(lr=0.1), batch 256, ten epochs with the
# validation accuracy after each. Offline: scikit-learn's digits stand in for Fashion-MNIST.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.images, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=256, shuffle=True)
test_iter = DataLoader(TensorDataset(X[1500:], y[1500:]), batch_size=256)
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
loss = nn.CrossEntropyLoss(reduction="none")
trainer = torch.optim.SGD(net.parameters(), lr=0.1)
# %% diagnose
for epoch in range(10):
    net.train()
    for X, y in train_iter:
        trainer.zero_grad()
        l = loss(net(X), y)
        l.mean().backward()
        trainer.step()
    net.eval()
    with torch.no_grad():
        for X, y in test_iter:
            (net(X).argmax(1) == y).float().mean()
