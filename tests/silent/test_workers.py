"""DataLoader workers that draw the same "random" numbers, and the fixed twin.

The data set makes its own generator in ``__init__`` (``self.rng =
np.random.default_rng(0)``) and draws its augmentation from it in ``__getitem__``: every
worker process gets a copy in the same state, so with two workers each noise vector comes
twice. (torch reseeds NumPy's global state per worker, not a generator the data set
holds; public reports of identical augmentations across workers describe this.) The
fix reseeds the copy in each worker with ``worker_init_fn``.
"""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

class Noisy(Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(128, 8, generator=g)
        self.y = torch.randint(0, 3, (128,), generator=g)
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = torch.from_numpy(self.rng.normal(0, 0.1, 8).astype("float32"))
        return self.x[i] + noise, self.y[i]

def seed_worker(worker_id):
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)

torch.manual_seed(0)
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
"""

TRAIN = """
loader = DataLoader(Noisy(), batch_size=32, shuffle=True, num_workers=2{extra})
for epoch in range(2):
    for xb, yb in loader:
        loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def _statuses(ip, extra):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, TRAIN.format(extra=extra))
    assert not report.errors and report.run["steps"] == 8
    return ({str(i.point): i.status for i in report.checklist},
            [f for f in report.findings if f.check == "worker-seeds"])


def test_workers_that_copy_one_generator_get_a_warning_with_the_reseeding_fix(ip):
    status, found = _statuses(ip, "")
    assert status["workers"] == "warning"
    assert found[0].evidence["generators"] == ["dataset.rng"]
    assert "info.dataset.rng = np.random.default_rng(info.seed)" in found[0].fix
    # the fix is code to paste: it runs, and defines the function the loader takes (the
    # fixed twin below uses the same function)
    ns = {}
    exec("import numpy as np, torch\n" + found[0].fix.split("DataLoader")[0], ns)
    assert "seed_worker" in ns


def test_the_fixed_twin_with_a_worker_init_fn_is_silent(ip):
    status, found = _statuses(ip, ", worker_init_fn=seed_worker")
    assert status["workers"] == "not_applicable" and found == []
