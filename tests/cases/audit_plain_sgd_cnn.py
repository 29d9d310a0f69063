# expect: 8=ok
# notes: 8
# A CNN on synthetic normalised images trained with torch.optim.SGD and no momentum.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
imgs = torch.randn(192, 3, 8, 8)
cls = (imgs[:, 0].mean((1, 2)) > 0).long()
dl = DataLoader(TensorDataset(imgs, cls), batch_size=32, shuffle=True)
conv_net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 2))
sgd = torch.optim.SGD(conv_net.parameters(), lr=0.1)
# %% diagnose
for epoch in range(2):
    for x, t in dl:
        sgd.zero_grad()
        nn.functional.cross_entropy(conv_net(x), t).backward()
        sgd.step()
