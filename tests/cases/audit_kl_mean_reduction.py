# expect: 20=warning
# Label smoothing by hand with F.kl_div(log_softmax, smoothed one-hot): correct
# distributions, but the default reduction='mean' divides by N*C.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
dgt = load_digits()
X = torch.tensor(dgt.data / 16.0, dtype=torch.float32)
y = torch.tensor(dgt.target)
dl = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for xb, yb in dl:
    smooth = F.one_hot(yb, 10).float() * 0.9 + 0.01
    loss = F.kl_div(F.log_softmax(model(xb), dim=1), smooth)
    opt.zero_grad()
    loss.backward()
    opt.step()
