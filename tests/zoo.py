"""A zoo of small trainings for the invariant tests: each builds its state from a seed and
trains a few steps, returning the loss sequence. Written in the styles people use."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def _loader(X, y, bs=16):
    return DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=True)


def _loop(model, opt, loader, epochs=4, sched=None, accumulate=1, autocast=False):
    losses = []
    for _ in range(epochs):
        for k, (xb, yb) in enumerate(loader):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                out = model(xb)
                if isinstance(out, dict):
                    out = out["logits"]
                elif isinstance(out, tuple):
                    out = out[0]
                loss = nn.functional.cross_entropy(out.float(), yb) / accumulate
            loss.backward()
            if (k + 1) % accumulate == 0:
                opt.step()
                opt.zero_grad()
            losses.append(loss.detach().clone())
        if sched is not None:
            sched.step()
    return losses


def mlp():
    X, y = torch.randn(96, 10), torch.randint(0, 3, (96,))
    m = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    return m, _loop(m, torch.optim.Adam(m.parameters()), _loader(X, y))


def cnn_bn_dropout():
    X, y = torch.randn(64, 1, 8, 8), torch.randint(0, 3, (64,))
    m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                      nn.Dropout2d(0.2), nn.Flatten(), nn.Linear(256, 3))
    return m, _loop(m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), _loader(X, y))


class RNN(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(5, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1]), out


def gru():
    X, y = torch.randn(64, 6, 5), torch.randint(0, 3, (64,))
    m = RNN(nn.GRU)
    return m, _loop(m, torch.optim.RMSprop(m.parameters(), lr=1e-3), _loader(X, y))


def lstm_clipped():
    X, y = torch.randn(64, 6, 5), torch.randint(0, 3, (64,))
    m = RNN(nn.LSTM)
    opt = torch.optim.Adam(m.parameters())
    losses = []
    for xb, yb in _loader(X, y):
        loss = nn.functional.cross_entropy(m(xb)[0], yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        losses.append(loss.detach().clone())
    return m, losses


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 16)
        self.block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        return {"logits": self.head(self.block(self.emb(ids)).mean(1))}


def transformer_dict_output():
    X, y = torch.randint(0, 30, (64, 7)), torch.randint(0, 3, (64,))
    m = Encoder()
    return m, _loop(m, torch.optim.AdamW(m.parameters(), lr=1e-3), _loader(X, y))


class Shared(nn.Module):
    """One layer called twice per step."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 12)
        self.shared = nn.Linear(12, 12)
        self.act = nn.Tanh()          # a module without parameters
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        h = self.act(self.shared(self.inp(x)))
        return self.out(self.act(self.shared(h)))


def weight_sharing():
    X, y = torch.randn(64, 6), torch.randint(0, 3, (64,))
    m = Shared()
    return m, _loop(m, torch.optim.Adam(m.parameters()), _loader(X, y))


def gan_two_optimizers():
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6))
    D = nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Dropout(0.1), nn.Linear(8, 1))
    og = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.randn(64, 6) + 2
    losses = []
    for i in range(0, 64, 16):
        fake = G(torch.randn(16, 4))
        d_loss = bce(D(real[i:i + 16]), torch.ones(16, 1)) + \
            bce(D(fake.detach()), torch.zeros(16, 1))
        od.zero_grad(); d_loss.backward(); od.step()
        g_loss = bce(D(fake), torch.ones(16, 1))
        og.zero_grad(); g_loss.backward(); og.step()
        losses += [d_loss.detach().clone(), g_loss.detach().clone()]
    model = nn.ModuleDict({"G": G, "D": D})
    return model, losses


def grad_accumulation_scheduler():
    X, y = torch.randn(96, 10), torch.randint(0, 3, (96,))
    m = nn.Sequential(nn.Linear(10, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    return m, _loop(m, opt, _loader(X, y), epochs=3, sched=sched, accumulate=3)


def autocast_bf16():
    X, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    m = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    return m, _loop(m, torch.optim.Adam(m.parameters()), _loader(X, y), autocast=True)


def frozen_backbone():
    X, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    backbone = nn.Sequential(nn.Linear(10, 16), nn.ReLU())
    for p in backbone.parameters():
        p.requires_grad_(False)
    m = nn.Sequential(backbone, nn.Linear(16, 3))
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad])
    return m, _loop(m, opt, _loader(X, y))


def compiled():
    X, y = torch.randn(64, 10), torch.randint(0, 3, (64,))
    m = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3))
    cm = torch.compile(m)
    return m, _loop(cm, torch.optim.Adam(m.parameters()), _loader(X, y), epochs=1)


ZOO = {f.__name__: f for f in (mlp, cnn_bn_dropout, gru, lstm_clipped, transformer_dict_output,
                               weight_sharing, gan_two_optimizers, grad_accumulation_scheduler,
                               autocast_bf16, frozen_backbone, compiled)}
