# expect: 6=problem
# Hand-made batches sliced in file order from label-sorted iris, three epochs: the
# same label-grouped order every epoch, no DataLoader to tell.
import torch
from torch import nn
from sklearn.datasets import load_iris

iris = load_iris()
inputs = torch.tensor(iris.data, dtype=torch.float32)
inputs = (inputs - inputs.mean(0)) / inputs.std(0)
targets = torch.tensor(iris.target)
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(3):
    for start in range(0, 150, 15):
        xb, yb = inputs[start:start + 15], targets[start:start + 15]
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
