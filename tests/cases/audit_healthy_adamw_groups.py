# healthy
# expect: 2=ok 5=ok 6=ok 7=ok 18=ok optimizer-params=ok frozen=ok
# AdamW with a decay group for weights and a no-decay group for biases and LayerNorm,
# standardised breast-cancer features, shuffled DataLoader, an eval loader.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
bc = load_breast_cancer()
X = torch.tensor(bc.data, dtype=torch.float32)
mu, sd = X[:450].mean(0), X[:450].std(0)
X = (X - mu) / sd
y = torch.tensor(bc.target)
train_dl = DataLoader(TensorDataset(X[:450], y[:450]), batch_size=32, shuffle=True)
val_dl = DataLoader(TensorDataset(X[450:], y[450:]), batch_size=64)
model = nn.Sequential(nn.Linear(30, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 2))
decay = [p for p in model.parameters() if p.ndim > 1]
no_decay = [p for p in model.parameters() if p.ndim <= 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                         {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
# %% diagnose
for epoch in range(2):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            model(xb)
