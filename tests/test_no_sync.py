"""Ordinary steps make no host sync from nbdebug: values stay on device until a flush."""

from __future__ import annotations

import sys
from pathlib import Path

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


def _watched_run(model, X, y, opt, every, epochs=1, batch_size=8):
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    watch = SyncWatch()
    kw = {} if every is None else {"every": every}
    with watch:
        with nbdebug.diagnose(quiet=True, **kw):
            for _ in range(epochs):
                for xb, yb in loader:
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
    return nbdebug.last_report(), watch


@pytest.mark.parametrize("every", [1, None], ids=["every-step", "default"])
@pytest.mark.parametrize("name", MODELS)
def test_no_host_sync_on_ordinary_steps(name, every):
    """Statistics on every step, and the default: lean steps with sampled ones between."""
    torch.manual_seed(0)
    model, X = MODELS[name]()
    y = torch.randint(0, 4, (X.shape[0],))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    epochs = 1 if every == 1 else 3
    report, watch = _watched_run(model, X, y, opt, every, epochs)
    assert report.run["steps"] == 16 * epochs and not report.errors
    assert "act/model.0" in report.timelines or len(report.timelines) > 4
    if every is None:
        assert report.run["sampling"]["interval"] > 1     # lean steps ran
    assert watch.violations == []


@pytest.mark.parametrize("name", ["mlp", "cnn", "gru", "transformer"])
def test_no_host_sync_in_the_benchmark_models(name):
    """The benchmark's own models, optimizer and batch size, under the default."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        from overhead import make
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    model, X, y = make(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    report, watch = _watched_run(model, X[:320], y[:320], opt, None, epochs=3, batch_size=32)
    assert report.run["steps"] == 30 and not report.errors
    assert watch.violations == []


def test_the_watch_catches_a_sync_in_a_hook():
    """The detector itself: a hook of nbdebug's that calls .item() is caught."""
    from nbdebug.capture.probes import forward, inputs

    model, X = mlp()
    opt = torch.optim.Adam(model.parameters())
    import os

    from syncwatch import PACKAGE

    def syncing_guard(t):                                          # a sync, on purpose
        return torch.tensor(t.detach().sum().item())
    # make the function look like nbdebug's own code, as a real regression would
    syncing_guard.__code__ = syncing_guard.__code__.replace(
        co_filename=os.path.join(PACKAGE, "capture", "probes", "forward.py"))
    original = forward.guard
    forward.guard = inputs.guard = syncing_guard
    watch = SyncWatch()
    try:
        with watch, nbdebug.diagnose(quiet=True):
            loss = model(X).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
    finally:
        forward.guard = inputs.guard = original
    assert any(v.startswith("item") for v in watch.violations)
