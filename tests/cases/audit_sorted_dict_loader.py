# expect: 6=problem 7=problem
# A Dataset returning dicts, sorted by class (wine), read by a DataLoader without
# shuffle for one epoch.
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from sklearn.datasets import load_wine


class WineSet(Dataset):
    def __init__(self):
        w = load_wine()
        order = w.target.argsort(kind="stable")
        x = torch.tensor(w.data[order], dtype=torch.float32)
        self.x = (x - x.mean(0)) / x.std(0)
        self.y = torch.tensor(w.target[order])

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"features": self.x[i], "label": self.y[i]}


torch.manual_seed(0)
wine_loader = DataLoader(WineSet(), batch_size=12)
net = nn.Sequential(nn.Linear(13, 24), nn.ReLU(), nn.Linear(24, 3))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
# %% diagnose
for batch in wine_loader:
    logits = net(batch["features"])
    loss = nn.functional.cross_entropy(logits, batch["label"])
    opt.zero_grad()
    loss.backward()
    opt.step()
