# expect: 13=problem
# One image of the data set holds a NaN pixel (a broken file): the NaN comes from the data,
# not from the network.
import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
d = load_digits()
images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
images[37, 0, 3, 4] = float("nan")
labels = torch.tensor(d.target)
loader = DataLoader(TensorDataset(images[:320], labels[:320]), batch_size=32)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                    nn.Linear(8 * 64, 10))
opt = torch.optim.SGD(cnn.parameters(), lr=0.05, momentum=0.9)
# %% diagnose
for xb, yb in loader:
    opt.zero_grad()
    nn.functional.cross_entropy(cnn(xb), yb).backward()
    opt.step()
