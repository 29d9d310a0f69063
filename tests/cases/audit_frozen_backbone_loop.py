# expect: frozen=problem
# Every parameter of a custom CNN frozen with a loop (meant for the backbone only);
# the training cell fails at loss.backward() and the report says why.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
imgs = torch.randn(64, 3, 8, 8)
lbl = (imgs.mean((1, 2, 3)) > 0).long()
dl = DataLoader(TensorDataset(imgs, lbl), batch_size=16, shuffle=True)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        return self.fc(self.backbone(x))


clf = Classifier()
for p in clf.parameters():
    p.requires_grad = False
opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
# %% diagnose
for xb, yb in dl:
    opt.zero_grad()
    nn.functional.cross_entropy(clf(xb), yb).backward()
    opt.step()
