"""Point 13's replay of the NaN batch: names the operation and never changes the training."""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        h = self.drop(torch.relu(self.fc1(x)))
        return self.fc2(torch.log(h))          # log(0): -inf, then NaN


def data():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(96, 10, generator=g)
    return X, (X.sum(1) > 0).long()
"""

TRAIN = """
torch.manual_seed(0)
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
X, y = data()
for i in range(0, 96, 32):
    opt.zero_grad()
    nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32]).backward()
    opt.step()
after = torch.rand(4)
bits = [p.detach().clone().view(torch.int32) for p in net.parameters()]
"""


def _state(ip):
    ns = ip.user_ns
    return [b.clone() for b in ns["bits"]], ns["after"].clone()


def test_replay_names_the_log_and_leaves_training_bitwise_identical(ip):
    run_cell(ip, SETUP)
    assert run_cell(ip, TRAIN).error_in_exec is None
    plain_bits, plain_after = _state(ip)
    result, report = diagnose_cell(ip, TRAIN)
    assert result.error_in_exec is None and not report.errors, report.errors
    diag_bits, diag_after = _state(ip)
    assert all(a.equal(b) for a, b in zip(plain_bits, diag_bits))
    assert plain_after.equal(diag_after)          # the replay consumed no RNG
    f = report.finding("nan-origin")
    replay = f.evidence["replay"]
    assert replay["op"] == "log" and replay["exact"] and replay["inputs"][0]["zeros"] > 0
    assert "log of 0" in f.message and "clamp_min" in f.fix


def test_nan_in_the_data_is_said_to_come_from_the_data(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, """
        torch.manual_seed(0)
        lin = nn.Linear(10, 2)
        opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
        X, y = data()
        X[40, 3] = float("nan")
        for i in range(0, 96, 32):
            opt.zero_grad()
            nn.functional.cross_entropy(lin(X[i:i + 32]), y[i:i + 32]).backward()
            opt.step()
    """)
    f = report.finding("nan-origin")
    assert f.step == 1 and f.evidence["replay"]["data_nonfinite"] == 1
    assert "came from the data" in f.message


LATE_NAN = """
import torch
from torch import nn


class Root(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.sqrt(x))))


torch.manual_seed(0)
X = torch.rand(40 * 8, 4) + 0.1
X[33 * 8 + 3, 2] = -1.0 if BAD else 0.5      # one negative value in the batch of step 33
y = (X[:, 0] > 0.6).long()
net = Root()
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
for i in range(40):
    opt.zero_grad()
    nn.functional.cross_entropy(net(X[i * 8:(i + 1) * 8]), y[i * 8:(i + 1) * 8]).backward()
    opt.step()
"""


def test_a_nan_on_a_lean_step_is_caught_at_its_step_and_named_by_the_replay(ip):
    """Step 33 is neither one of the first steps nor sampled: it runs steady, where only
    the loss is guarded, and the replay of the batch names the operation and its layer."""
    run_cell(ip, "BAD = True")
    _, report = diagnose_cell(ip, LATE_NAN)
    ev = report.finding("nan-origin").evidence
    assert report.run["steps"] == 40
    assert ev["step"] == 33 and ev["phase"] == "forward" and "output_only" not in ev
    assert report.finding("nan-origin").where == "net (Root)"
    assert ev["replay"]["op"] == "sqrt" and ev["replay"]["inputs"][0]["negatives"] == 1
    _, every_step = diagnose_cell(ip, LATE_NAN, flags="--quiet --every 1")
    ev1 = every_step.finding("nan-origin").evidence
    assert ev1["step"] == 33 and "output_only" not in ev1 and ev1["replay"]["op"] == "sqrt"
    run_cell(ip, "BAD = False")
    _, healthy = diagnose_cell(ip, LATE_NAN)
    assert healthy.finding("nan-origin") is None


def test_the_finding_names_the_module_whose_own_forward_made_it(ip):
    """The log runs in Net.forward between fc1 and fc2: the headline, the place and the fix
    name Net and the log, not fc2 (which only passed the -inf on)."""
    from nbdebug.ui.text import render_finding
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, TRAIN)
    f = report.finding("nan-origin")
    assert f.where.endswith("(Net)") and f.title == "NaN/Inf made by log"
    assert f.fix.startswith(f"In the forward of {f.where}, use torch.log(x.clamp_min(1e-8))")
    assert "set_detect_anomaly" not in f.fix
    assert "fc2 (Linear) only passed it on" in f.message
    assert f.evidence["operation"] == "log" and "zero entries" in f.evidence["operation input"]
    text = "\n".join(render_finding(f))
    assert "{" not in text and '"' not in text        # evidence in words, not JSON
