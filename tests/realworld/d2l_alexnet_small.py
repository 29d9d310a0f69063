# healthy
# source: d2l-ai/d2l-en, chapter_convolutional-modern/alexnet.md (PyTorch); torchvision AlexNet
# AlexNet's layout at a small scale: a features stack of convolutions, ReLU and max
# pooling, then a classifier head that starts with Dropout(0.5) after the flatten,
# Linear-ReLU-Dropout(0.5)-Linear-ReLU-Linear, CrossEntropyLoss, SGD(lr=0.01) with
# momentum 0.9 (torchvision's reference recipe). Offline: scikit-learn's digits upsampled
# to 32x32; channel widths cut by 8-16x.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
X = nn.functional.interpolate(X, size=(32, 32), mode="bilinear")
X = (X - X.mean()) / X.std()
y = torch.tensor(digits.target)
train_iter = DataLoader(TensorDataset(X[:1500], y[:1500]), batch_size=32, shuffle=True)
val_iter = DataLoader(TensorDataset(X[1500:], y[1500:]), batch_size=256)


class AlexNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 12, kernel_size=5, stride=1, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2), nn.Conv2d(12, 24, kernel_size=3, padding=1),
            nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=2),
            nn.Conv2d(24, 32, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2))
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5), nn.Linear(32 * 4 * 4, 256), nn.ReLU(inplace=True),
            nn.Dropout(p=0.5), nn.Linear(256, 256), nn.ReLU(inplace=True),
            nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


net = AlexNet()
optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
loss = nn.CrossEntropyLoss()
# %% diagnose
for epoch in range(6):
    net.train()
    for X_b, y_b in train_iter:
        optimizer.zero_grad()
        loss(net(X_b), y_b).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        for X_b, y_b in val_iter:
            net(X_b)
