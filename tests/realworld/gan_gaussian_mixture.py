# healthy
# source: pytorch/tutorials, beginner_source/dcgan_faces_tutorial.py (its training loop)
# A GAN on 2-D points. The generator's backward through the discriminator fills the
# discriminator's .grad, which opt_D's zero_grad clears before its own step: healthy.
# The DCGAN tutorial's training loop on the classic toy problem of a GAN learning a ring
# of Gaussians: a generator and a discriminator MLP, BCELoss, labels 1 for real and 0 for
# fake, the discriminator trained on a real and a detached fake batch, then the generator
# trained to make the discriminator say "real"; two Adam optimizers with lr=2e-4 and
# betas=(0.5, 0.999).
import math

import torch
from torch import nn

torch.manual_seed(0)
angles = torch.arange(8) * (2 * math.pi / 8)
centres = torch.stack([angles.cos(), angles.sin()], 1) * 2


def real_batch(n):
    return centres[torch.randint(0, 8, (n,))] + 0.05 * torch.randn(n, 2)


netG = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                     nn.Linear(64, 2))
netD = nn.Sequential(nn.Linear(2, 64), nn.LeakyReLU(0.2), nn.Linear(64, 64),
                     nn.LeakyReLU(0.2), nn.Linear(64, 1), nn.Sigmoid())
criterion = nn.BCELoss()
optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
# %% diagnose
for step in range(300):
    real = real_batch(64)
    netD.zero_grad()
    errD_real = criterion(netD(real).view(-1), torch.ones(64))
    errD_real.backward()
    fake = netG(torch.randn(64, 8))
    errD_fake = criterion(netD(fake.detach()).view(-1), torch.zeros(64))
    errD_fake.backward()
    optimizerD.step()
    netG.zero_grad()
    errG = criterion(netD(fake).view(-1), torch.ones(64))
    errG.backward()
    optimizerG.step()
