# healthy
# source: d2l-ai/d2l-en, chapter_convolutional-modern/batch-norm.md (PyTorch, concise BNLeNet)
# LeNet with batch normalization as the book builds it: 5x5 convolutions and dense layers,
# each followed by BatchNorm and a Sigmoid, average pooling, CrossEntropyLoss, plain
# SGD(lr=0.1), batch 128. Offline: scikit-learn's digits, upsampled from 8x8 to 28x28,
# stand in for Fashion-MNIST.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
X = nn.functional.interpolate(X, size=(28, 28), mode="bilinear")
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=128, shuffle=True)
net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(), nn.AvgPool2d(2, 2),
    nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(), nn.AvgPool2d(2, 2),
    nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(), nn.Linear(84, 10))
optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
loss = nn.CrossEntropyLoss()
# %% diagnose
for epoch in range(5):
    net.train()
    for X_b, y_b in train_iter:
        optimizer.zero_grad()
        loss(net(X_b), y_b).backward()
        optimizer.step()
