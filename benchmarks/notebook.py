"""Overhead of ``%%diagnose`` in a real notebook kernel, with the live dashboard on.

One kernel (nbclient) runs the same training cell bare and under ``%%diagnose``,
interleaved (bare, diagnosed, bare again, ...). Each cell's time is the kernel's own busy
time for it (from the ``busy`` to the ``idle`` status message), so the dashboard's redraws
and the final report count. After each diagnosed cell, the overhead nbdebug itself
reported (``report.run["overhead"]``) is read, to compare with the measured ratio. The
second bare cell of each round is a control: its ratio to the first shows how far a
ratio moves when nothing differs.

    python benchmarks/notebook.py [--pairs 5] [--steps 6000]   (cells of about 3-5 s bare)
"""

from __future__ import annotations

import argparse
import json
import statistics
import textwrap
from datetime import datetime

import nbformat
from nbclient import NotebookClient

SETUP = """
import time, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits
torch.set_num_threads(1)
%load_ext nbdebug
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
def fresh():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    return net, torch.optim.Adam(net.parameters(), lr=1e-3)
"""

TRAIN = """
net, opt = fresh()
steps = 0
while steps < {steps}:
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
"""

READ_OVERHEAD = """
import nbdebug, json
print(json.dumps(nbdebug.last_report().run.get("overhead")))
"""


def _busy_seconds(cell) -> float:
    t = cell.metadata["execution"]
    start = datetime.fromisoformat(t["iopub.status.busy"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(t["iopub.status.idle"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


def run(pairs: int, steps: int) -> dict:
    train = textwrap.dedent(TRAIN.format(steps=steps)).strip()
    # a warm-up run of each first: the kernel's first diagnosis pays nbdebug's imports and
    # its one look at the modules already loaded (a few tenths of a second, once)
    cells = [textwrap.dedent(SETUP).strip(), train, "%%diagnose\n" + train]
    for _ in range(pairs):
        cells += [train, "%%diagnose\n" + train, READ_OVERHEAD.strip(), train]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=True).execute()
    ratios, reported, control = [], [], []
    for i in range(pairs):
        bare, diagnosed, read, again = nb.cells[3 + 4 * i: 7 + 4 * i]
        ratios.append(_busy_seconds(diagnosed) / _busy_seconds(bare))
        control.append(_busy_seconds(again) / _busy_seconds(bare))
        text = "".join(o.get("text", "") for o in read.outputs if o.output_type == "stream")
        value = json.loads(text.strip().splitlines()[-1])
        reported.append(value if value is not None else float("nan"))
    return {"ratios": ratios, "reported": reported, "control": control,
            "bare_seconds": statistics.median(_busy_seconds(nb.cells[3 + 4 * i])
                                              for i in range(pairs))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6000)
    args = ap.parse_args(argv)
    out = run(args.pairs, args.steps)
    r = out["ratios"]
    shown = statistics.median(out["reported"])
    print("\n### In a notebook kernel (nbclient), MLP on digits, live dashboard on\n")
    print("| cell | bare cell | median ratio | min | max | nbdebug's own figure (median) |")
    print("|---|---|---|---|---|---|")
    c = out["control"]
    print(f"| {args.steps} steps, bare again (control) | {out['bare_seconds']:.2f} s "
          f"| {statistics.median(c):.3f}x | {min(c):.3f}x | {max(c):.3f}x | |")
    print(f"| {args.steps} steps | {out['bare_seconds']:.2f} s | {statistics.median(r):.3f}x "
          f"| {min(r):.3f}x | {max(r):.3f}x | +{shown:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
