# expect: 4=problem
# A Sequential ending in nn.Softmax, trained with nn.CrossEntropyLoss: softmax twice.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data / 16.0, dtype=torch.float32)
y = torch.tensor(d.target)
train = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
loss_fn = nn.CrossEntropyLoss()
# %% diagnose
for epoch in range(2):
    for images, labels in train:
        optimizer.zero_grad()
        loss_fn(net(images), labels).backward()
        optimizer.step()
