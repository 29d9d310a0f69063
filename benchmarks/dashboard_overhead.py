"""What the live dashboard costs: bare training vs %%diagnose --quiet vs %%diagnose with
the dashboard, in one real kernel (nbclient), plus the dashboard's cost per redraw.

    python benchmarks/dashboard_overhead.py [--epochs 40] [--repeat 3]

Prints one JSON object. The training is the README demo without its sleep: an MLP on
scikit-learn's iris (label-sorted, unshuffled, plain SGD), 15 steps per epoch.
"""

from __future__ import annotations

import argparse
import json
import textwrap

import nbformat
from nbclient import NotebookClient

SETUP = """
%load_ext nbdebug
import time, json, statistics
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_iris

# one intra-op thread: on a shared 2-core machine torch's thread barriers stall whenever
# another process takes a core, which swamps the differences measured here
torch.set_num_threads(1)

data = load_iris()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)
train_loader = DataLoader(TensorDataset(X, y), batch_size=10)
val_loader = DataLoader(TensorDataset(X[::3], y[::3]), batch_size=50)

def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.05)

def train(model, optimizer, epochs):
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_loader:
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            for xb, yb in val_loader:
                model(xb)

times = {"bare": [], "quiet": [], "live": []}
redraws = []
train(*make(), 2)    # warm-up
"""

#: each timing spans three cells (start, the training, stop), so all three pay the
#: same kernel round trips; the middle cell is the only difference
START = "model, optimizer = make(); t = time.perf_counter()"
BODIES = {"bare": "train(model, optimizer, EPOCHS)",
          "quiet": "%%diagnose --quiet\ntrain(model, optimizer, EPOCHS)",
          "live": "%%diagnose\ntrain(model, optimizer, EPOCHS)"}
REPORT = """
import nbdebug
from nbdebug.magics.display import LAST_DASHBOARD
r = nbdebug.last_report()
d = LAST_DASHBOARD[-1]
redraws.append({"count": d.redraws, "seconds": d.redraw_seconds, "run": r.run["seconds"],
                 "reported_overhead": r.run["overhead"], "steps": r.run["steps"]})
"""
SUMMARY = """
med = {k: statistics.median(v) for k, v in times.items()}
per = [x["seconds"] / x["count"] for x in redraws if x["count"]]
print(json.dumps({
    "steps": redraws[-1]["steps"],
    "bare_s": round(med["bare"], 3), "quiet_s": round(med["quiet"], 3),
    "live_s": round(med["live"], 3),
    "overhead_quiet": round(med["quiet"] / med["bare"] - 1, 3),      # capture only
    "overhead_live": round(med["live"] / med["bare"] - 1, 3),        # capture + dashboard
    "dashboard_only": round(med["live"] / med["quiet"] - 1, 3),
    "redraws": [x["count"] for x in redraws],
    "seconds_per_redraw": round(statistics.median(per), 3) if per else None,
    "reported_overhead": [x["reported_overhead"] for x in redraws],
}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cells = [SETUP, f"EPOCHS = {args.epochs}"]
    for _ in range(args.repeat):
        for kind, body in BODIES.items():
            cells += [START, body, f'times["{kind}"].append(time.perf_counter() - t)']
        cells.append(REPORT)
    cells.append(SUMMARY)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip("\n")) for c in cells]
    NotebookClient(nb, timeout=1200, kernel_name="python3").execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    print(json.dumps(json.loads(out), indent=1))


if __name__ == "__main__":
    main()
