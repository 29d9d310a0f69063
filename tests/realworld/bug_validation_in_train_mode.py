# expect: train-eval-mode=warning
# source: https://github.com/wolny/pytorch-3dunet/issues/53
# "Need to set the model to 'eval' mode when assessing the validation data": the
# validation pass runs with the model still in train mode, so BatchNorm normalises each
# validation batch with its own statistics (and updates the running ones with validation
# data) and dropout drops units; the validation numbers are off. The fix: model.eval()
# before validating, model.train() after.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(digits.target)
train_loader = DataLoader(TensorDataset(images[:1500], labels[:1500]), batch_size=64,
                          shuffle=True)
val_loader = DataLoader(TensorDataset(images[1500:], labels[1500:]), batch_size=100)
net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 16, 10))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(3):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        optimizer.step()
    with torch.no_grad():
        for xb, yb in val_loader:
            net(xb)
