"""Ordinary steps make no host sync from nbdebug: values stay on device until a flush."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nbdebug
from syncwatch import SyncWatch


def mlp():
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)), torch.randn(128, 16)


def cnn():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Dropout(0.1), nn.Flatten(), nn.Linear(4 * 8 * 8, 4))
    return net, torch.randn(128, 1, 8, 8)


class GRUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(6, 12, batch_first=True)
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.1)
        self.head = nn.Linear(16, 4)

    def forward(self, ids):
        return self.head(self.layer(self.emb(ids)).mean(1))


MODELS = {
    "mlp": mlp,
    "cnn": cnn,
    "gru": lambda: (GRUNet(), torch.randn(128, 7, 6)),
    "transformer": lambda: (Encoder(), torch.randint(0, 50, (128, 9))),
}


@pytest.mark.parametrize("name", MODELS)
def test_no_host_sync_on_ordinary_steps(name):
    torch.manual_seed(0)
    model, X = MODELS[name]()
    y = torch.randint(0, 4, (X.shape[0],))
    loader = DataLoader(TensorDataset(X, y), batch_size=8, shuffle=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    watch = SyncWatch()
    with watch:
        with nbdebug.diagnose(quiet=True, every=1):     # statistics on every step
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    report = nbdebug.last_report()
    assert report.run["steps"] == 16 and not report.errors
    assert "act/model.0" in report.timelines or len(report.timelines) > 4
    assert watch.violations == []


def test_the_watch_catches_a_sync_in_a_hook():
    """The detector itself: a hook of nbdebug's that calls .item() is caught."""
    from nbdebug.capture import core

    model, X = mlp()
    opt = torch.optim.Adam(model.parameters())
    import os

    from syncwatch import PACKAGE

    def syncing_guard(t):                                          # a sync, on purpose
        return torch.tensor(t.detach().sum().item())
    # make the function look like nbdebug's own code, as a real regression would
    syncing_guard.__code__ = syncing_guard.__code__.replace(
        co_filename=os.path.join(PACKAGE, "capture", "core.py"))
    original = core.guard
    core.guard = syncing_guard
    watch = SyncWatch()
    try:
        with watch, nbdebug.diagnose(quiet=True):
            loss = model(X).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
    finally:
        core.guard = original
    assert any(v.startswith("item") for v in watch.violations)
