# expect: 5=warning
# source: https://datascience.stackexchange.com/questions/39929/why-normalize-when-all-features-are-on-the-same-scale
# "Why normalize when all features are on the same scale?": a dense network on 28x28
# images flattened to 784 raw pixel values in 0..255 reaches 10% accuracy; divided by
# 255 it reaches 85%. The answers: large raw inputs saturate the units and make the
# gradients unusable; scale the pixels.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) * (255 / 16)
images = nn.functional.interpolate(images, size=(28, 28), mode="bilinear").flatten(1)
labels = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
