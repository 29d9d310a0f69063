# expect: 15=warning
# A small CNN on digits with Dropout2d(p=0.8) after each convolution, validated in eval
# mode every epoch: with dropout on, the training accuracy stays far below what the same
# model reaches on held-out data with dropout off. Most feature maps are dropped at every
# step, and what the convolutions learn barely reaches the classifier.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
images = (images - images.mean()) / images.std()
labels = torch.tensor(digits.target)
train_loader = DataLoader(TensorDataset(images[:1400], labels[:1400]), batch_size=64,
                          shuffle=True)
val_loader = DataLoader(TensorDataset(images[1400:], labels[1400:]), batch_size=200)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.8),
                    nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.8),
                    nn.Flatten(), nn.Linear(8 * 64, 10))
opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(3):
    cnn.train()
    for xb, yb in train_loader:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(xb), yb).backward()
        opt.step()
    cnn.eval()
    with torch.no_grad():
        for xb, yb in val_loader:
            cnn(xb)
