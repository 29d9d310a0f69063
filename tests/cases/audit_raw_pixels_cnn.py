# expect: 5=warning
# A small CNN fed raw 0..255 pixel values (synthetic 8-bit images, two classes).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
images = torch.randint(0, 256, (256, 1, 12, 12)).float()
labels = (images[:, 0, :6].mean((1, 2)) > images[:, 0, 6:].mean((1, 2))).long()
loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(8 * 6 * 6, 2))
opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    for x, t in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(cnn(x), t).backward()
        opt.step()
