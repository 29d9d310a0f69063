# healthy
# expect: 7=ok 8=ok optimizer-params=ok
# A small GAN on 2-D points: the discriminator's BCE sees all-real then all-fake
# targets within one step, which is how GANs work, not single-label batches.
import torch
from torch import nn

torch.manual_seed(0)
points = torch.randn(512, 2) * 0.5 + torch.tensor([2.0, -1.0])
points = (points - points.mean(0)) / points.std(0)
gen = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
disc = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999))
bce = nn.BCEWithLogitsLoss()
# %% diagnose
for i in range(0, 512, 32):
    real = points[i:i + 32]
    fake = gen(torch.randn(32, 4))
    d_loss = bce(disc(real), torch.ones(32, 1)) + bce(disc(fake.detach()), torch.zeros(32, 1))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = bce(disc(fake), torch.ones(32, 1))
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
