# healthy
# source: pytorch/examples, siamese_network/main.py
# The official Siamese network's recipe: one shared CNN embeds both images of a pair and a
# small head with a Sigmoid says whether they show the same digit; BCELoss,
# Adadelta(lr=1.0), StepLR(gamma=0.7), a test pass in eval mode after every epoch.
# Offline: pairs of scikit-learn digits, half same, half not; a small CNN stands in for
# the ResNet-18 backbone, and the head reads the absolute difference of the embeddings
# (the official head reads their concatenation, which this small backbone learns slowly).
import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(1)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(digits.target)


def make_pairs(idx, n):
    g = torch.Generator().manual_seed(len(idx))
    a = idx[torch.randint(len(idx), (n,), generator=g)]
    b = idx[torch.randint(len(idx), (n,), generator=g)]
    same = torch.arange(n) % 2 == 0
    for k in torch.nonzero(same).flatten().tolist():
        pool = idx[labels[idx] == labels[a[k]]]
        b[k] = pool[torch.randint(len(pool), (1,), generator=g)]
    return images[a], images[b], (labels[a] == labels[b]).float()


train_loader = DataLoader(TensorDataset(*make_pairs(torch.arange(1500), 2000)), batch_size=64,
                          shuffle=True)
test_loader = DataLoader(TensorDataset(*make_pairs(torch.arange(1500, 1797), 400)),
                         batch_size=200)


class SiameseNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                 nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(32 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 1))
        self.sigmoid = nn.Sigmoid()

    def forward(self, a, b):
        joined = (self.cnn(a) - self.cnn(b)).abs()
        return self.sigmoid(self.fc(joined)).squeeze(1)


model = SiameseNetwork()
optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
criterion = nn.BCELoss()
# %% diagnose
for epoch in range(5):
    model.train()
    for a, b, target in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(a, b), target)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for a, b, target in test_loader:
            criterion(model(a, b), target)
    scheduler.step()
