# healthy
# source: pytorch/tutorials, beginner_source/basics/quickstart_tutorial.py
# The quickstart's NeuralNetwork (Flatten, 512-512 ReLU MLP, 10 logits), CrossEntropyLoss,
# plain SGD(lr=1e-3) without momentum, batch 64, train() and test() functions called once
# per epoch, test() in eval mode under no_grad. Offline: scikit-learn's 8x8 digits stand
# in for FashionMNIST; more epochs over the smaller set give about as many steps as one
# FashionMNIST epoch does in the tutorial.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
images = nn.functional.interpolate(images, size=(28, 28), mode="bilinear")
labels = torch.tensor(digits.target)
train_dataloader = DataLoader(TensorDataset(images[:1500], labels[:1500]), batch_size=64,
                              shuffle=True)
test_dataloader = DataLoader(TensorDataset(images[1500:], labels[1500:]), batch_size=64)


class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
            nn.Linear(512, 10))

    def forward(self, x):
        return self.linear_relu_stack(self.flatten(x))


model = NeuralNetwork()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)


def train(dataloader, model, loss_fn, optimizer):
    model.train()
    for X, y in dataloader:
        loss = loss_fn(model(X), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test(dataloader, model, loss_fn):
    model.eval()
    test_loss = correct = 0
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    return test_loss / len(dataloader), correct / len(dataloader.dataset)
# %% diagnose
for t in range(12):
    train(train_dataloader, model, loss_fn, optimizer)
    test(test_dataloader, model, loss_fn)
