# expect: train-eval-mode=problem
# model.eval() for validation after epoch 1 and no model.train() afterwards: the rest of
# the training runs in eval mode, BatchNorm uses its running statistics, Dropout is off.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(d.target)
train_dl = DataLoader(TensorDataset(images[:1000], labels[:1000]), batch_size=64, shuffle=True)
val_dl = DataLoader(TensorDataset(images[1000:1300], labels[1000:1300]), batch_size=150)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                    nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 64, 10))
opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
# %% diagnose
cnn.train()
for epoch in range(3):
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(xb), yb).backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            cnn(xb)
