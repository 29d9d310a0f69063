# healthy
# source: d2l-ai/d2l-en, chapter_multilayer-perceptrons/dropout.md (PyTorch)
# The concise dropout MLP: two hidden layers of 256 with ReLU, Dropout(0.5) after each,
# CrossEntropyLoss, plain SGD(lr=0.5), batch 256, with a validation pass in eval mode.
# Offline: scikit-learn's digits stand in for Fashion-MNIST.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=256, shuffle=True)
val_iter = DataLoader(TensorDataset(X[1500:], y[1500:]), batch_size=256)
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.5),
                    nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
loss = nn.CrossEntropyLoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.5)
# %% diagnose
for epoch in range(10):
    net.train()
    for X_b, y_b in train_iter:
        trainer.zero_grad()
        loss(net(X_b), y_b).backward()
        trainer.step()
    net.eval()
    with torch.no_grad():
        for X_b, y_b in val_iter:
            loss(net(X_b), y_b)
