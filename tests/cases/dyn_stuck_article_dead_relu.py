# expect: stuck=problem 3=problem
# Two findings, one story: point 3 names the lr the schedule raised, "stuck" the dead ReLUs.
# The article's closing question: the loss goes down for a while, then "from this step on
# training does not change at all". A schedule raises Adam's lr 100x after epoch 2; the big
# steps push every ReLU unit of the hidden layer below zero for all inputs (pixels are >= 0),
# no gradient flows any more and the loss freezes near ln(10).
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32) / 16
y = torch.tensor(d.target)
flowers = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=100.0)
# %% diagnose
for epoch in range(6):
    for xb, yb in flowers:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    sched.step()
