"""What a training is made of, found from what the code does, wherever its objects live.

Optimizers and models that exist only inside a function the cell calls, or as attributes
of a user's object; training on raw tensors with a manual update; held-out passes on
tensors (``model(X_val)`` and a loss under ``no_grad``), with class, single-logit binary
and regression outputs. Each through the real ``%%diagnose``.
"""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
X, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
X_val, y_val = torch.randn(64, 8), torch.randint(0, 3, (64,))
"""

LOCAL_OPTIMIZER = """
def train(model, epochs):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(epochs):
        for i in range(0, 256, 32):
            loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

class Trainer:
    def __init__(self, net):
        self.net = net
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def fit(self):
        for i in range(0, 256, 32):
            loss = nn.functional.cross_entropy(self.net(X[i:i + 32]), y[i:i + 32])
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
"""


def test_an_optimizer_local_to_a_function_is_found_named_and_described(ip):
    run_cell(ip, SETUP)
    run_cell(ip, LOCAL_OPTIMIZER)
    _, report = diagnose_cell(
        ip, "train(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), 5)")
    assert report.run["optimizers"] == [{"name": "optimizer", "type": "SGD", "steps": 40}]
    assert report.run["models"][0]["name"] == "model"
    statuses = {str(i.point): i.status for i in report.checklist}
    assert statuses["optimizer-params"] == "ok"         # it does hold the model's weights
    assert statuses["8"] != "not_checked"             # the SGD's settings were read
    assert not report.errors
    _, report = diagnose_cell(
        ip, "Trainer(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))).fit()")
    assert report.run["optimizers"] == [{"name": "self.opt", "type": "Adam", "steps": 8}]
    assert report.run["models"][0]["name"] == "self.net"


RAW = """
W = torch.zeros(8, 3, requires_grad=True)
for step in range(60):
    loss = nn.functional.cross_entropy(X @ W, y)
    loss.backward()
    with torch.no_grad():
        W -= 0.5 * W.grad
        W.grad = None
"""


def test_raw_tensor_training_is_watched_step_by_step_at_the_loss(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, RAW)
    assert report.run["steps"] == 60
    loss = report.timelines["loss"]["values"]
    assert len(loss) == 60 and abs(loss[0] - 1.0986) < 1e-3 and loss[-1] < loss[0]
    assert any("no model was seen" in n for n in report.notes)
    assert not report.errors


HELD_OUT = """
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, {out}))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
for epoch in range(4):
    for i in range(0, 256, 32):
        loss = crit(net(X[i:i + 32]){squeeze}, target[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        val_loss = crit(net(X_val){squeeze}, target_val)
    net.train()
"""


def test_held_out_tensors_are_scored_with_class_binary_and_regression_outputs(ip):
    run_cell(ip, SETUP)
    cases = {
        "classes": ("crit = nn.CrossEntropyLoss(); target, target_val = y, y_val", 3, "",
                    "acc"),
        "binary": ("crit = nn.BCEWithLogitsLoss(); target = (X[:, 0] > 0).float();"
                   "target_val = (X_val[:, 0] > 0).float()", 1, ".squeeze(1)", "acc"),
        "regression": ("crit = nn.MSELoss(); target = X[:, :1] * 2; target_val = X_val[:, :1] * 2",
                       1, "", "mse"),
    }
    for name, (setup, out, squeeze, metric) in cases.items():
        run_cell(ip, setup)
        _, report = diagnose_cell(ip, HELD_OUT.format(out=out, squeeze=squeeze))
        key = ("eval/X_val" if metric == "acc" else "heldout_mse/X_val")
        assert key in report.timelines, (name, list(report.timelines))
        rounds = report.timelines[key]["values"]
        assert [r["round"] for r in rounds] == [1, 2, 3, 4] and rounds[0]["n"] == 64, name
        if name == "binary":
            assert rounds[-1]["acc"] > 0.8                # an easy rule, learnt
        if name == "regression":
            assert rounds[-1]["mse"] < rounds[-1]["baseline"]
        assert not [k for k in report.timelines if k.startswith("eval/") and "X_val" not in k]
        assert not report.errors


LOADERS = """
from torch.utils.data import DataLoader, TensorDataset
train_loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
val_loader = DataLoader(TensorDataset(X_val, y_val), batch_size=1)
torch.manual_seed(1)
net = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.2), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
"""

VALIDATE = """
for epoch in range(3):
    net.train()
    for xb, yb in train_loader:
        loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    {mode}
    for xb, yb in val_loader:                 # no torch.no_grad(): outputs never trained on
        val_loss = nn.functional.cross_entropy(net(xb), yb)
    with torch.no_grad():                     # accuracy on the training data, not training
        for xb, yb in train_loader:
            net(xb)
"""


def test_a_validation_pass_is_told_by_behaviour_in_either_mode_with_gradients_on(ip):
    """Batches of one from a loader never trained on: held-out, not training (no false
    label-mixing alarm); left in train mode, its Dropout is reported; the training data's
    accuracy pass is no extra epoch."""
    run_cell(ip, SETUP)
    for mode, expect in (("net.eval()", "ok"), ("pass", "warning")):
        run_cell(ip, LOADERS)
        _, report = diagnose_cell(ip, VALIDATE.format(mode=mode))
        roles = {ld["name"]: (ld["role"], ld["epochs"]) for ld in report.run["loaders"]}
        assert roles == {"train_loader": ("train", 6), "val_loader": ("eval", 3)}, roles
        assert report.run["epochs"] == 3 and report.run["steps"] == 24
        status = {str(i.point): i.status for i in report.checklist}
        assert status["7"] != "problem" and status["6"] != "problem", report.findings
        assert status["train-eval-mode"] == expect, (mode, report.findings)
        if mode == "net.eval()":
            assert [r["round"] for r in report.timelines["eval/val_loader"]["values"]] == [
                1, 2, 3]
        assert not report.errors


def test_a_wrapper_made_again_each_step_is_the_same_model(ip):
    """``model = DistributedDataParallel(net)`` inside the loop: one model, not one per step."""
    run_cell(ip, SETUP)
    run_cell(ip, """
class Wrapper(nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x)

net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
""")
    _, report = diagnose_cell(ip, """
for epoch in range(8):
    for i in range(0, 256, 32):
        model = Wrapper(net)
        loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
""")
    assert len(report.run["models"]) == 1
    assert report.run["steps"] == 64 and not report.errors
    assert not [f for f in report.findings if f.severity in ("warning", "problem")]


def test_an_optimizer_wrapper_and_a_grad_scaler_count_each_step_once(ip):
    """An optimizer wrapped the way Accelerate wraps one (a subclass whose step calls the
    inner optimizer's), stepped through a GradScaler: one optimizer, one step per step."""
    run_cell(ip, SETUP)
    run_cell(ip, """
class Wrapped(torch.optim.Optimizer):
    def __init__(self, optimizer):
        self.optimizer = optimizer
        super().__init__([p for g in optimizer.param_groups for p in g["params"]], {})
        self.param_groups = optimizer.param_groups

    def step(self, closure=None):
        return self.optimizer.step(closure)

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none)

net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
opt = Wrapped(torch.optim.Adam(net.parameters(), lr=1e-2))
scaler = torch.amp.GradScaler("cpu")
""")
    _, report = diagnose_cell(ip, """
for epoch in range(5):
    for i in range(0, 256, 32):
        loss = nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
""")
    assert report.run["steps"] == 40
    assert report.run["optimizers"] == [{"name": "opt", "type": "Wrapped", "steps": 40}]
    assert not report.errors
