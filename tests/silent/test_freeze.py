"""Freeze intent (silent errors a loss curve hides), each bug with its fixed twin.

- Frozen, yet stepped: the backbone is frozen after a first backward, its .grad kept, so
  the optimizer (built over every parameter) keeps moving it (a pattern of public
  fine-tuning bug reports: "requires_grad=False but the weights still change").
- Frozen too late: the freeze is applied inside the training function after the first
  epoch, so the first steps update the layers meant to stay fixed (TrainCheck's benchmark
  of real silent errors has one).
- Fixed twins: freezing before the optimizer exists and before the first step.
"""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
X, y = torch.randn(256, 8), torch.randint(0, 3, (256,))
backbone = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
head = nn.Linear(16, 3)
model = nn.Sequential(backbone, head)
"""

STEPPED = """
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step, i in enumerate(list(range(0, 256, 32)) * 8):     # 64 steps
    loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
    if step == 0:
        loss.backward()
        for p in backbone.parameters():      # frozen now, but its .grad stays
            p.requires_grad_(False)
        opt.step()
        continue
    for p in head.parameters():
        p.grad = None
    loss.backward()
    opt.step()
"""

LATE = """
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
def train(epochs):
    for epoch in range(epochs):
        if epoch == 1:                        # meant from the start
            for p in backbone.parameters():
                p.requires_grad_(False)
        for i in range(0, 256, 32):
            loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
train(4)
"""

FIXED = """
for p in backbone.parameters():
    p.requires_grad_(False)
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1,
                      momentum=0.9)
for epoch in range(4):
    for i in range(0, 256, 32):
        loss = nn.functional.cross_entropy(model(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def _freeze(ip, cell):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, cell)
    assert not report.errors, report.errors
    status = {str(i.point): i.status for i in report.checklist}
    return status["freeze"], [f for f in report.findings if f.check == "freeze-intent"]


def test_frozen_parameters_that_still_change_are_a_problem(ip):
    """Seen frozen at step 50 and at the end, and moved in between by the optimizer."""
    status, found = _freeze(ip, STEPPED)
    assert status == "problem"
    assert found[0].title == "Frozen parameters changed"
    assert found[0].evidence["frozen_changed"] == ["model.0.0.weight", "model.0.0.bias"]


def test_a_freeze_applied_after_the_first_steps_is_reported(ip):
    status, found = _freeze(ip, LATE)
    assert status == "warning"
    assert found[0].evidence["frozen_late"] == ["model.0.0.weight", "model.0.0.bias"]


def test_the_fixed_twin_freezes_first_and_gets_no_warning(ip):
    status, found = _freeze(ip, FIXED)
    assert status == "ok" and found == []


def test_a_model_never_frozen_does_not_apply(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, FIXED.replace("requires_grad_(False)", "requires_grad_(True)"))
    status = {str(i.point): i.status for i in report.checklist}
    assert status["freeze"] == "not_applicable"
