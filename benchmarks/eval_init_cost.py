"""Cost of the eval determinism probe and of the init audits, in one process.

Each run builds its model (with a user init routine, as GPT-style code does) and trains
whole epochs with a held-out pass (4 batches of 64) after each. Three kinds of run, interleaved A B C A B C:
bare, nbdebug's default, and the default without the two probes; times are the process's
CPU time (other processes on a shared machine count less). Reported: the median of B / A
and C / A, the difference (B - C) / A, and the probes' own time measured inside them
(the second forward, the mode-change and init wrappers, the audit) as a share of the
bare run: on a busy machine the difference of whole runs is noise, the probes' own time
is not.

    python benchmarks/eval_init_cost.py [--repeats 5] [--epochs 4] [--models mlp,cnn,transformer]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch import nn

import nbdebug
import nbdebug.capture.core as core
from nbdebug.capture.probes import PROBES, DeterminismProbe, InitProbe  # type: ignore[attr-defined]


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 64)
        self.layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
        self.head = nn.Linear(64, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer(self.emb(ids)).mean(1))


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    if name == "mlp":
        model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1),
                              nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
        x = torch.randn(2048, 64, generator=g)
    elif name == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                              nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 8 * 8, 4))
        x = torch.randn(1024, 1, 16, 16, generator=g)
    else:
        model = Encoder()
        x = torch.randint(0, 100, (1024, 16), generator=g)

    def init(m: nn.Module) -> None:               # the user's own init routine
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    model.apply(init)
    return model, x


#: seconds spent inside the two probes' own code (their methods timed by ``timed``)
OWN = [0.0]


def timed(cls: type, name: str) -> None:
    fn = getattr(cls, name)

    def wrapper(*args, **kwargs):           # type: ignore[no-untyped-def]
        t0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            OWN[0] += time.process_time() - t0
    setattr(cls, name, wrapper)


for _cls, _names in ((DeterminismProbe, ("_mode_change", "_on_output")),
                     (InitProbe, ("_init", "first_forward", "finish"))):
    for _name in _names:
        timed(_cls, _name)


def run(name: str, epochs: int, kind: str) -> float:
    torch.manual_seed(0)
    probes = core.PROBES
    if kind == "without":
        core.PROBES = tuple(p for p in PROBES if p not in (DeterminismProbe, InitProbe))
    ctx = contextlib.nullcontext() if kind == "bare" else nbdebug.diagnose(quiet=True)
    try:
        t0 = time.process_time()
        with ctx:
            model, x = build(name)
            y = torch.randint(0, 4, (x.shape[0],), generator=torch.Generator().manual_seed(1))
            x_val, y_val = x[:256], y[:256]
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _ in range(epochs):
                model.train()
                for i in range(0, x.shape[0], 32):
                    loss = nn.functional.cross_entropy(model(x[i:i + 32]), y[i:i + 32])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                model.eval()
                with torch.no_grad():
                    for i in range(0, 256, 64):
                        nn.functional.cross_entropy(model(x_val[i:i + 64]),
                                                    y_val[i:i + 64]).item()
        return time.process_time() - t0
    finally:
        core.PROBES = probes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--models", default="mlp,cnn,transformer")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {args.epochs} epochs, a held-out pass after each")
    print(f"{'model':12} {'bare s':>8} {'default':>9} {'without':>8} {'B-C':>8} {'own':>8}")
    for name in args.models.split(","):
        run(name, 1, "default")                   # warm-up
        times: dict[str, list[float]] = {"bare": [], "default": [], "without": []}
        own = []
        for _ in range(args.repeats):
            for kind in times:
                OWN[0] = 0.0
                times[kind].append(run(name, args.epochs, kind))
                if kind == "default":
                    own.append(OWN[0] / times["bare"][-1])
        bare = statistics.median(times["bare"])
        with_all = statistics.median(b / a for a, b in zip(times["bare"], times["default"]))
        without = statistics.median(c / a for a, c in zip(times["bare"], times["without"]))
        share = statistics.median((b - c) / a for a, b, c in zip(
            times["bare"], times["default"], times["without"]))
        print(f"{name:12} {bare:8.3f} {with_all:8.3f}x {without:7.3f}x {share:+8.2%} "
              f"{statistics.median(own):8.3%}")


if __name__ == "__main__":
    main()
