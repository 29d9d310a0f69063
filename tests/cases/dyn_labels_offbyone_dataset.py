# expect: 10=problem
# A hand-written Dataset pairs sample i with the label of sample i+1 (off by one): the MLP
# memorises the training labels, the held-out accuracy never leaves chance.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

torch.manual_seed(0)
d = load_digits()
features = torch.tensor(d.data, dtype=torch.float32) / 16.0
labels = torch.tensor(d.target)


class Digits(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return features[i], labels[i + 1]          # bug: off by one


train_dl = DataLoader(Digits(150), batch_size=30, shuffle=True)
test_dl = DataLoader(TensorDataset(features[1200:1500], labels[1200:1500]), batch_size=150)
mlp = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 10))
opt = torch.optim.Adam(mlp.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(40):
    for xb, yb in train_dl:
        opt.zero_grad()
        nn.functional.cross_entropy(mlp(xb), yb).backward()
        opt.step()
    if epoch % 10 == 9:
        with torch.no_grad():
            mlp.eval()
            for xb, yb in test_dl:
                mlp(xb)
            mlp.train()
