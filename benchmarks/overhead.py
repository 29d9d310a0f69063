"""Overhead of nbdebug against the bare training loop, in one process.

Runs A (bare) and B (a configuration) interleaved, A B A B ..., so that drift of the
machine hits both alike, and reports the median and min/max of the per-pair ratios B/A.

    python benchmarks/overhead.py [--repeats 7] [--epochs 2] [--models mlp,cnn,gru,transformer]
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time
from typing import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nbdebug


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    d = load_digits()
    X = torch.tensor(d.data, dtype=torch.float32)
    return (X - X.mean(0)) / (X.std(0) + 1e-6), torch.tensor(d.target)


class GRUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = nn.GRU(8, 32, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 32)
        self.layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.emb(ids)).mean(1))


def make(name: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        X, y = digits()
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)), X, y
    if name == "cnn":
        X, y = digits()
        X = X.reshape(-1, 1, 8, 8)
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                            nn.Linear(16 * 64, 10))
        return net, X, y
    if name == "gru":
        X = torch.randn(1024, 12, 8, generator=g)
        return GRUNet(), X, (X[:, :, 0].sum(1) > 0).long() + 2 * (X[:, -1, 1] > 0).long()
    if name == "transformer":
        ids = torch.randint(0, 100, (1024, 16), generator=g)
        return Encoder(), ids, ids[:, 0] % 4
    raise SystemExit(f"unknown model {name!r}")


def train(name: str, epochs: int, wrap: Callable[[], contextlib.AbstractContextManager]) -> float:
    torch.manual_seed(0)
    model, X, y = make(name)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    with wrap():
        for _ in range(epochs):
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
    return time.perf_counter() - t0


CONFIGS: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
    "nbdebug default": lambda: nbdebug.diagnose(quiet=True),
    "nbdebug --every 1": lambda: nbdebug.diagnose(quiet=True, every=1),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--models", default="mlp,cnn,gru,transformer")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# nbdebug {nbdebug.__version__}, torch {torch.__version__}, Python "
          f"{platform.python_version()}, {platform.machine()}, 1 thread, "
          f"{args.repeats} pairs x {args.epochs} epochs")
    print("| model | configuration | bare s (median) | ratio median | ratio min | ratio max |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        train(name, 1, contextlib.nullcontext)                     # warm-up
        for label, wrap in CONFIGS.items():
            bare, ratios = [], []
            for _ in range(args.repeats):
                a = train(name, args.epochs, contextlib.nullcontext)
                b = train(name, args.epochs, wrap)
                bare.append(a)
                ratios.append(b / a)
            print(f"| {name} | {label} | {statistics.median(bare):.3f} | "
                  f"{statistics.median(ratios):.3f} | {min(ratios):.3f} | {max(ratios):.3f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
