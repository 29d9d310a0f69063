# expect: 4=problem
# nn.NLLLoss fed with softmax probabilities instead of log-probabilities.
import torch
from torch import nn
from sklearn.datasets import load_wine

torch.manual_seed(0)
w = load_wine()
X = torch.tensor(w.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(w.target)
perm = torch.randperm(len(y))
X, y = X[perm], y[perm]
net = nn.Sequential(nn.Linear(13, 32), nn.Tanh(), nn.Linear(32, 3))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
nll = nn.NLLLoss()
# %% diagnose
for epoch in range(3):
    order = torch.randperm(len(y))
    for i in range(0, len(y), 16):
        b = order[i:i + 16]
        probs = torch.softmax(net(X[b]), dim=1)
        loss = nll(probs, y[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
