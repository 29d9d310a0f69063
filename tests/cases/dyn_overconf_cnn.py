# expect: 11=warning
# A small CNN on 120 digit images trained long with SGD+momentum, evaluated each epoch on
# a held-out loader: held-out loss rises round after round, accuracy does not drop.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(1)
d = load_digits()
images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
labels = torch.tensor(d.target)
train_dl = DataLoader(TensorDataset(images[:120], labels[:120]), batch_size=20, shuffle=True)
held_dl = DataLoader(TensorDataset(images[1000:1400], labels[1000:1400]), batch_size=200)
cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                    nn.Linear(16 * 16, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(25):
    cnn.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(xb), yb).backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        for xb, yb in held_dl:
            cnn(xb)
