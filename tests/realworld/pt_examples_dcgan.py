# healthy
# source: pytorch/examples, dcgan/main.py
# The official DCGAN: a generator of ConvTranspose2d layers without bias, each followed by
# BatchNorm and ReLU, ending in Tanh; a discriminator of Conv2d layers without bias with
# BatchNorm and LeakyReLU(0.2), its last convolution (no bias, no norm) followed by a
# Sigmoid; weights from N(0, 0.02), BCELoss, two Adam optimizers with lr=2e-4 and
# betas=(0.5, 0.999). Offline: 16x16 synthetic "images" (blurred blobs), nz=16, ngf=ndf=16.
import torch
from torch import nn

torch.manual_seed(1)
n, size = 512, 16
grid = torch.stack(torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij"))
centres = torch.randint(4, 12, (n, 2, 1, 1))
real_images = (torch.exp(-((grid - centres) ** 2).sum(1).float() / 8.0) * 2 - 1).unsqueeze(1)
nz, ngf, ndf = 16, 16, 16


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, 1, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(1, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m):
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


netG, netD = Generator(), Discriminator()
netG.apply(weights_init)
netD.apply(weights_init)
criterion = nn.BCELoss()
optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
batch_size = 64
# %% diagnose
for epoch in range(3):
    perm = torch.randperm(n)
    for i in range(0, n, batch_size):
        real = real_images[perm[i:i + batch_size]]
        b = real.size(0)
        netD.zero_grad()
        err_real = criterion(netD(real), torch.full((b,), 1.0))
        err_real.backward()
        fake = netG(torch.randn(b, nz, 1, 1))
        err_fake = criterion(netD(fake.detach()), torch.full((b,), 0.0))
        err_fake.backward()
        optimizerD.step()
        netG.zero_grad()
        err_g = criterion(netD(fake), torch.full((b,), 1.0))
        err_g.backward()
        optimizerG.step()
