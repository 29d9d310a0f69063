# healthy
# expect: 10=ok
# The twin of dyn_labels_misaligned_slow: the labels belong to their images but 40% of
# them are flipped (noisy annotation). Training accuracy (against the noisy labels) climbs
# slowly to ~67%; the validation accuracy rises with it (~75% on clean labels): slow,
# noisy, but learning that carries over. No point-10 claim.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = (torch.tensor(d.target) >= 5).long()
order = torch.randperm(len(y))
X, y = X[order], y[order]
flip = torch.rand(1300) < 0.4                     # 40% of the labels flipped: hard, not wrong
y_train = torch.where(flip, 1 - y[:1300], y[:1300])
train_dl = DataLoader(TensorDataset(X[:1300], y_train), batch_size=32, shuffle=True)
val_dl = DataLoader(TensorDataset(X[1300:], y[1300:]), batch_size=256)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
# %% diagnose
for epoch in range(8):
    model.train()
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        for xb, yb in val_dl:
            model(xb)
