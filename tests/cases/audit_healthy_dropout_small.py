# healthy
# expect: 15=ok 4=ok
# A custom CNN with Dropout2d(0.1) after the conv and Dropout(0.5) in the fully
# connected head (after Flatten), hand-made shuffled batches.
import torch
from torch import nn

torch.manual_seed(0)
frames = torch.randn(256, 1, 10, 10)
kind = (frames[:, 0, :5].mean((1, 2)) > 0).long()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.act = nn.ReLU()
        self.drop2d = nn.Dropout2d(0.1)
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 4 * 4, 2)

    def forward(self, x):
        h = self.pool(self.drop2d(self.act(self.conv(x))))
        return self.fc(self.drop(self.flat(h)))


net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(256)
    for i in range(0, 256, 32):
        b = perm[i:i + 32]
        loss = nn.functional.cross_entropy(net(frames[b]), kind[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
