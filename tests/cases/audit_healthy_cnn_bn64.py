# healthy
# expect: 5=ok 12=ok 17=ok 18=ok
# notes: 14
# A CNN with Conv -> BatchNorm -> ReLU at batch 64, normalised synthetic images, SGD
# with Nesterov momentum; conv layers have bias=False because BatchNorm follows.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
imgs = torch.rand(256, 3, 8, 8)
imgs = (imgs - imgs.mean((0, 2, 3), keepdim=True)) / imgs.std((0, 2, 3), keepdim=True)
labels = (imgs[:, 0, :4].mean((1, 2)) > imgs[:, 0, 4:].mean((1, 2))).long()
loader = DataLoader(TensorDataset(imgs, labels), batch_size=64, shuffle=True, drop_last=True)
cnn = nn.Sequential(
    nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
    nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))
opt = torch.optim.SGD(cnn.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                      weight_decay=5e-4)
# %% diagnose
for epoch in range(2):
    for x, t in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(x), t).backward()
        opt.step()
