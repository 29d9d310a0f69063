# expect: 1=problem
# The article's case: a CNN whose weights start 40x too large on an easy two-class task;
# the logits reach the thousands and the loss drops to 0.0000 within a few steps.
import torch
from sklearn.datasets import load_digits
from torch import nn

torch.manual_seed(0)
d = load_digits()
keep = (d.target == 0) | (d.target == 1)
X = torch.tensor(d.images[keep], dtype=torch.float32).unsqueeze(1) / 16.0
y = torch.tensor(d.target[keep])
net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                    nn.Linear(8 * 8 * 8, 2))
with torch.no_grad():
    for p in net.parameters():
        p.mul_(40.0)
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
# %% diagnose
for step in range(60):
    i = (step * 32) % (len(X) - 32)
    out = net(X[i:i + 32])
    loss = nn.CrossEntropyLoss()(out, y[i:i + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
