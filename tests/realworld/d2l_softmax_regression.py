# healthy
# source: d2l-ai/d2l-en, chapter_linear-classification/softmax-regression-concise.md (PyTorch)
# Concise softmax regression: nn.Sequential(nn.Flatten(), nn.Linear(num_inputs, 10)),
# weights drawn from N(0, 0.01), nn.CrossEntropyLoss, plain SGD(lr=0.1), batch 256, and
# an evaluation of the accuracy on the validation set after every epoch. Offline:
# scikit-learn's 8x8 digits stand in for Fashion-MNIST.
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
net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))


def init_weights(m):
    if type(m) == nn.Linear:
        nn.init.normal_(m.weight, std=0.01)


net.apply(init_weights)
loss = nn.CrossEntropyLoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.1)


def evaluate_accuracy(net, data_iter):
    net.eval()
    right = total = 0
    with torch.no_grad():
        for X, y in data_iter:
            right += (net(X).argmax(1) == y).sum().item()
            total += y.numel()
    return right / total
# %% diagnose
for epoch in range(10):
    net.train()
    for X, y in train_iter:
        l = loss(net(X), y)
        trainer.zero_grad()
        l.backward()
        trainer.step()
    evaluate_accuracy(net, test_iter)
