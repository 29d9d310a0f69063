# healthy
# expect: 4=ok 5=ok 18=ok
# One-hot categorical features next to standardised numbers, a model ending in
# nn.LogSoftmax trained with nn.NLLLoss, bias=False followed by LayerNorm.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
n = 600
cat = torch.randint(0, 4, (n,))
onehot = nn.functional.one_hot(cat, 4).float()
num = torch.randn(n, 3)
X = torch.cat([onehot, num], 1)
y = ((cat == 2) | (num[:, 0] > 1)).long()
dl = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(7, 32, bias=False), nn.LayerNorm(32), nn.ReLU(),
                      nn.Linear(32, 2), nn.LogSoftmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
nll = nn.NLLLoss()
# %% diagnose
for epoch in range(2):
    for xb, yb in dl:
        opt.zero_grad()
        nll(model(xb), yb).backward()
        opt.step()
