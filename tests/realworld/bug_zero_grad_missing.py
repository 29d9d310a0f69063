# expect: zero-grad=problem
# source: https://stackoverflow.com/questions/48001598/why-do-we-need-to-call-zero-grad-in-pytorch
# "Why do we need to call zero_grad() in PyTorch?": backward() adds into .grad, so a loop
# that never calls optimizer.zero_grad() steps with the sum of all past gradients. The
# accepted answer: zero the gradients once per step, before loss.backward().
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_wine

torch.manual_seed(0)
data = load_wine()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)
loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
loss_function = nn.CrossEntropyLoss()
# %% diagnose
for epoch in range(6):
    for xb, yb in loader:
        loss = loss_function(model(xb), yb)
        loss.backward()
        optimizer.step()
