# healthy
# source: pytorch/examples, vae/main.py
# The official VAE: 784-400-20 encoder with mean and log-variance heads, 20-400-784
# decoder with a sigmoid, loss = binary cross-entropy (sum) + KL divergence to N(0, 1),
# Adam(lr=1e-3), batch 128, a test pass in eval mode after every epoch. Offline: the 64
# pixels of scikit-learn's digits, scaled to [0, 1], stand in for MNIST's 784.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(1)
pixels = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
train_loader = DataLoader(TensorDataset(pixels[:1500]), batch_size=128, shuffle=True)
test_loader = DataLoader(TensorDataset(pixels[1500:]), batch_size=128)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 64)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


model = VAE()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(1, 6):
    model.train()
    for (data,) in train_loader:
        optimizer.zero_grad()
        recon, mu, logvar = model(data)
        loss = loss_function(recon, data, mu, logvar)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for (data,) in test_loader:
            recon, mu, logvar = model(data)
            loss_function(recon, data, mu, logvar)
