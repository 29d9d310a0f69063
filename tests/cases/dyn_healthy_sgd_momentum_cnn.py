# healthy
# A CNN with BatchNorm and Dropout, SGD at a high-but-fine lr=0.1 with momentum 0.9,
# train()/eval() switched properly, a validation and a test loader from one distribution.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 8.0 - 1.0
labels = torch.tensor(d.target)
perm = torch.randperm(len(labels))
images, labels = images[perm], labels[perm]
train_dl = DataLoader(TensorDataset(images[:1200], labels[:1200]), batch_size=32, shuffle=True)
val_dl = DataLoader(TensorDataset(images[1200:1500], labels[1200:1500]), batch_size=150)
test_dl = DataLoader(TensorDataset(images[1500:], labels[1500:]), batch_size=150)
cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16 * 16, 10))
opt = torch.optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(3):
    cnn.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(xb), yb).backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        for loader in (val_dl, test_dl):
            for xb, yb in loader:
                cnn(xb)
