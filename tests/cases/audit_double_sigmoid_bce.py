# expect: 4=problem
# Binary classifier: the model ends in nn.Sigmoid and the loss is BCEWithLogitsLoss.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
bc = load_breast_cancer()
X = torch.tensor(bc.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(bc.target, dtype=torch.float32).unsqueeze(1)
dl = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
bce = nn.BCEWithLogitsLoss()
# %% diagnose
for epoch in range(2):
    for xb, yb in dl:
        opt.zero_grad()
        bce(model(xb), yb).backward()
        opt.step()
