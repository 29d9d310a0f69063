"""Overhead of nbdebug against the bare training loop, in one process.

Runs A (bare) and B (a configuration) interleaved, A B A B ..., so that drift of the
machine hits both alike, and reports the median and min/max of the per-pair ratios B/A.
The control row pairs the bare loop with itself: how far a ratio moves when nothing
differs, on this machine, now.

    python benchmarks/overhead.py [--repeats 5] [--steps 600] [--models mlp,cnn,gru,transformer]

Each run trains for whole epochs until it has taken at least ``--steps`` optimizer steps;
``--short`` adds a row per model for the default on runs of 100 steps, where the
before-training audits of the first steps weigh most.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import sys
import time

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


class Config:
    """One way of running the loop: a context around it and the backward call inside it."""

    name = "bare"
    models: tuple[str, ...] | None = None       # None: every model

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def prepare(self, model: nn.Module) -> nn.Module:
        return model

    def backward(self, loss, step, model, opt, out, y) -> None:
        loss.backward()


class Control(Config):
    """The bare loop against itself: the spread of a ratio that measures nothing, to read
    the other rows against (on a busy machine single pairs swing by 10% or more)."""

    name = "bare again (control)"


class Nbdebug(Config):
    def __init__(self, every: int | None = None) -> None:
        self.every = every
        self.name = "nbdebug default" if every is None else f"nbdebug --every {every}"

    def context(self):
        kw = {} if self.every is None else {"every": self.every}
        return nbdebug.diagnose(quiet=True, **kw)


class DetectAnomaly(Config):
    name = "torch.autograd.detect_anomaly"

    def context(self):
        import warnings
        warnings.filterwarnings("ignore", message=".*nomaly.*")
        return torch.autograd.detect_anomaly()


class ItemLogger(Config):
    """What common monitors do: a Python float per parameter per step."""

    name = "naive .item() logger"

    def backward(self, loss, step, model, opt, out, y):
        loss.backward()
        self.log = {"loss": loss.item()}
        for n, p in model.named_parameters():
            self.log[n] = p.grad.norm().item()
            self.log[n + ".w"] = p.detach().norm().item()


class CockpitEconomy(Config):
    """Cockpit's cheapest preset, logging every step; needs BackPACK-supported layers."""

    name = "cockpit economy"
    models = ("mlp", "cnn")

    def __init__(self) -> None:
        from cockpit import Cockpit  # noqa: F401  (fails early when not installed)

    def prepare(self, model):
        from backpack import extend
        self.model = extend(model)
        return self.model

    def context(self):
        from backpack import extend
        from cockpit import Cockpit
        from cockpit.utils.configuration import configuration
        self.loss_fn = extend(nn.CrossEntropyLoss())
        self.cockpit = Cockpit(self.model.parameters(), quantities=configuration("economy"))
        return contextlib.nullcontext()

    def backward(self, loss, step, model, opt, out, y):
        loss = self.loss_fn(out, y)
        losses = nn.functional.cross_entropy(out, y, reduction="none")
        info = {"batch_size": y.shape[0], "individual_losses": losses, "loss": loss,
                "optimizer": opt}
        with self.cockpit(step, info=info):
            loss.backward(create_graph=self.cockpit.create_graph(step))


def cockpit_config() -> tuple[Config | None, str]:
    try:
        return CockpitEconomy(), ""
    except Exception as exc:                          # not installed, or broken with this torch
        return None, f"{type(exc).__name__}: {exc}"


def cnn_without_bn() -> nn.Module:
    """BackPACK cannot extend BatchNorm in training mode: the same CNN without it."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(16 * 64, 10))


DEVICE = torch.device("cpu")


def train(name: str, steps: int, config: Config, no_bn: bool = False) -> float:
    torch.manual_seed(0)
    model, X, y = make(name)
    if no_bn:
        model = cnn_without_bn()
    model = config.prepare(model.to(DEVICE))
    X, y = X.to(DEVICE), y.to(DEVICE)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = -(-steps // len(loader))
    _sync()
    t0 = time.perf_counter()
    step = 0
    with config.context():
        for _ in range(epochs):
            for xb, yb in loader:
                out = model(xb)
                loss = nn.functional.cross_entropy(out, yb)
                opt.zero_grad()
                config.backward(loss, step, model, opt, out, yb)
                opt.step()
                step += 1
    _sync()
    return time.perf_counter() - t0


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def memory(steps_list: tuple[int, ...] = (1000, 50000)) -> list[tuple[int, float, float]]:
    """Host memory of nbdebug over long MLP runs: traced Python peak and RSS growth."""
    import gc
    import tracemalloc
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x, y = torch.randn(8, 64), torch.randint(0, 10, (8,))
    rows = []
    for steps in steps_list:
        gc.collect()
        rss0 = _rss()
        tracemalloc.start()
        with nbdebug.diagnose(quiet=True):
            for _ in range(steps):
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((steps, peak / 2**20, (_rss() - rss0) / 2**20))
    return rows


def device_memory(names: list[str], steps: int) -> list[tuple[str, int, int]]:
    """Peak CUDA memory allocated by a run, bare and under the default ``%%diagnose``."""
    rows = []
    for name in names:
        train(name, 50, Config())                  # cuBLAS/cuDNN workspaces before the peaks
        peaks = []
        for config in (Config(), Nbdebug()):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            train(name, steps, config)
            peaks.append(torch.cuda.max_memory_allocated())
        rows.append((name, peaks[0], peaks[1]))
    return rows


def _rss() -> int:
    import os
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=600, help="at least this many steps per run")
    ap.add_argument("--short", action="store_true", help="also the default on 100-step runs")
    ap.add_argument("--models", default="mlp,cnn,gru,transformer")
    ap.add_argument("--memory", action="store_true", help="also measure 1k vs 50k MLP steps")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--configs", default="control,default,every1,anomaly,item,cockpit",
                    help="which configurations beside the bare loop (comma-separated)")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(1)
    wanted = set(args.configs.split(","))
    cockpit, why = cockpit_config() if "cockpit" in wanted else (None, "")
    configs: list[Config] = [c for key, c in (
        ("control", Control()), ("default", Nbdebug()), ("every1", Nbdebug(every=1)),
        ("anomaly", DetectAnomaly()),
        ("item", ItemLogger())) if key in wanted]
    if cockpit is not None:
        configs.append(cockpit)
    print(f"nbdebug {nbdebug.__version__}, torch {torch.__version__}, Python "
          f"{platform.python_version()}, {platform.machine()}, {DEVICE}, 1 CPU thread, "
          f"{args.repeats} interleaved pairs, runs of at least {args.steps} steps, batch 32\n")
    if why:
        print(f"Cockpit not measured: {why}\n")
    if DEVICE.type == "cuda":
        print("| model | peak CUDA MiB, bare | peak CUDA MiB, nbdebug default | overhead MiB |")
        print("|---|---|---|---|")
        for name, bare, diag in device_memory(args.models.split(","), args.steps):
            print(f"| {name} | {bare / 2**20:.1f} | {diag / 2**20:.1f} | "
                  f"{(diag - bare) / 2**20:.1f} |", flush=True)
        print()
    print("| model | configuration | bare s (median) | ratio median | ratio min | ratio max "
          "| overhead nbdebug shows (median) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        train(name, 50, Config())                                  # warm-up, imports too
        train(name, 50, Nbdebug())
        runs = [(config, args.steps) for config in configs]
        if args.short:
            at = next((i + 1 for i, (c, _) in enumerate(runs)
                       if isinstance(c, Nbdebug) and c.every is None), len(runs))
            runs.insert(at, (Nbdebug(), 100))
        for config, steps in runs:
            if config.models is not None and name not in config.models:
                print(f"| {name} | {config.name} | - | not supported by BackPACK | | |",
                      flush=True)
                continue
            no_bn = name == "cnn" and isinstance(config, CockpitEconomy)
            bare, ratios, shown = [], [], []
            for _ in range(args.repeats):
                a = train(name, steps, Config(), no_bn=no_bn)
                b = train(name, steps, config, no_bn=no_bn)
                bare.append(a)
                ratios.append(b / a)
                if isinstance(config, Nbdebug):
                    shown.append(nbdebug.last_report().run.get("overhead") or float("nan"))
            label = config.name + (f", {steps}-step runs" if steps != args.steps else "")
            own = f"+{statistics.median(shown):.1%}" if shown else ""
            print(f"| {name}{' (no BN)' if no_bn else ''} | {label} | "
                  f"{statistics.median(bare):.3f} | {statistics.median(ratios):.3f} | "
                  f"{min(ratios):.3f} | {max(ratios):.3f} | {own} |", flush=True)
    if args.memory:
        print("\n| MLP steps under nbdebug | traced Python peak MiB | RSS growth MiB |")
        print("|---|---|---|")
        for steps, peak, rss in memory():
            print(f"| {steps} | {peak:.2f} | {rss:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
