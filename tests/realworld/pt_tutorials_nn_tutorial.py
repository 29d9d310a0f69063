# healthy
# source: pytorch/tutorials, beginner_source/nn_tutorial.py
# "What is torch.nn really?": the Mnist_Logistic model (one nn.Linear(784, 10)) with
# F.cross_entropy, plain optim.SGD(lr=0.5), batch 64, and the tutorial's fit() that runs
# loss_batch over the training loader, then over the validation loader (batch 128) in
# eval mode under no_grad. Offline: scikit-learn's 8x8 digits stand in for MNIST.
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
train_ds, valid_ds = TensorDataset(x[:1500], y[:1500]), TensorDataset(x[1500:], y[1500:])
bs, lr = 64, 0.5


class Mnist_Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, xb):
        return self.lin(xb)


def get_data(train_ds, valid_ds, bs):
    return (DataLoader(train_ds, batch_size=bs, shuffle=True),
            DataLoader(valid_ds, batch_size=bs * 2))


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)
    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item(), len(xb)


def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)
        model.eval()
        with torch.no_grad():
            losses, nums = zip(*[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl])
        np.sum(np.multiply(losses, nums)) / np.sum(nums)


train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
model = Mnist_Logistic()
opt = optim.SGD(model.parameters(), lr=lr)
# %% diagnose
fit(5, model, F.cross_entropy, opt, train_dl, valid_dl)
