# expect: 4=problem
# source: https://discuss.pytorch.org/t/cross-entropy-loss-is-not-decreasing/43814/16
# "Cross entropy loss is not decreasing": the loss stays at ln(10) = 2.30 epoch after
# epoch. The accepted explanation: the network's last layer is followed by a ReLU, so the
# logits fed to CrossEntropyLoss are clipped at 0; once the last layer's outputs go
# negative they are all 0, the softmax is uniform and no gradient flows. Remove the
# activation on the logits.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10), nn.ReLU())
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = criterion(model(xb), yb)
        loss.backward()
        optimizer.step()
