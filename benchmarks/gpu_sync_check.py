"""Ordinary training steps on CUDA under torch.cuda.set_sync_debug_mode("error").

Any host sync made while the loop runs (by nbdebug or by torch on its behalf) raises. The
flush that copies statistics to the host is moved past the loop (its one sync is allowed
and happens outside the checked region). Exits non-zero on a sync.

    python benchmarks/gpu_sync_check.py
"""

from __future__ import annotations

import sys

import torch
from torch import nn

import nbdebug
from nbdebug.capture import core

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from overhead import make  # noqa: E402


def check(name: str, steps: int = 40) -> str:
    torch.manual_seed(0)
    model, X, y = make(name)
    dev = torch.device("cuda")
    model, X, y = model.to(dev), X[:steps * 32].to(dev), y[:steps * 32].to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    core.FLUSH_EVERY = 10**9                     # no flush inside the checked loop
    with nbdebug.diagnose(quiet=True, every=1):
        torch.cuda.set_sync_debug_mode("error")
        try:
            for i in range(steps):
                xb, yb = X[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32]
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    report = nbdebug.last_report()
    assert report.run["steps"] == steps, report.run
    assert not report.errors, report.errors
    return f"{name}: {steps} steps, no host sync, overhead {report.run['overhead']:.3%}"


if __name__ == "__main__":
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    for name in ("mlp", "cnn", "gru", "transformer"):
        print(check(name), flush=True)
