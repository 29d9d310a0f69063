# expect: 17=warning
# A custom MLP whose weights are drawn from N(0, 1) (the article's huge-variance
# Gaussian): std 1 with fan_in 784 is ~40x the Kaiming value.
import torch
from torch import nn

torch.manual_seed(0)
pixels = torch.rand(256, 784)
digit = torch.randint(0, 10, (256,))


class Wide(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(784, 128)
        self.l2 = nn.Linear(128, 10)
        for layer in (self.l1, self.l2):
            nn.init.normal_(layer.weight, mean=0.0, std=1.0)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


wide = Wide()
opt = torch.optim.Adam(wide.parameters(), lr=1e-3)
# %% diagnose
for i in range(0, 256, 32):
    loss = nn.functional.cross_entropy(wide(pixels[i:i + 32]), digit[i:i + 32])
    opt.zero_grad()
    loss.backward()
    opt.step()
