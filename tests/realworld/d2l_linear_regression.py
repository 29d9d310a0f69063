# healthy
# source: d2l-ai/d2l-en, chapter_linear-regression/linear-regression-concise.md (PyTorch)
# Concise linear regression: synthetic data y = Xw + b + noise with w = [2, -3.4] and
# b = 4.2, nn.Linear(2, 1) with weights from N(0, 0.01) and zero bias, nn.MSELoss, plain
# SGD(lr=0.03), batch 10, three epochs.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
true_w, true_b = torch.tensor([2, -3.4]), 4.2
features = torch.normal(0, 1, (1000, 2))
labels = (features @ true_w + true_b + torch.normal(0, 0.01, (1000,))).reshape(-1, 1)
data_iter = DataLoader(TensorDataset(features, labels), batch_size=10, shuffle=True)
net = nn.Sequential(nn.Linear(2, 1))
net[0].weight.data.normal_(0, 0.01)
net[0].bias.data.fill_(0)
loss = nn.MSELoss()
trainer = torch.optim.SGD(net.parameters(), lr=0.03)
# %% diagnose
for epoch in range(3):
    for X, y in data_iter:
        l = loss(net(X), y)
        trainer.zero_grad()
        l.backward()
        trainer.step()
