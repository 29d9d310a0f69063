"""Dropout left on in eval mode, and its fixed twin.

A model calls ``F.dropout(x, p)`` in its forward (training defaults to True), or passes
a fixed ``dropout_p`` to ``F.scaled_dot_product_attention``: ``model.eval()`` does not turn
either off, so validation runs with dropout (the mistake public issue threads about
"eval results change between runs" and attention dropout in inference describe). The
fixed twins tie the call to ``self.training``.
"""

from __future__ import annotations

import pytest

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
import torch.nn.functional as F
torch.manual_seed(0)
X, X_val = torch.randn(256, 8), torch.randn(64, 8)
y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
y_val = (X_val[:, 0] > 0).long() + (X_val[:, 1] > 0).long()

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 3)
        self.q = nn.Linear(16, 16)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        {body}
        return self.fc2(h)

net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
"""

TRAIN = """
for epoch in range(3):
    net.train()
    for i in range(0, 256, {batch}):
        loss = F.cross_entropy(net(X[i:i + {batch}]), y[i:i + {batch}])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        val = F.cross_entropy(net(X_val), y_val)
"""

BODIES = {
    "functional": ("h = F.dropout(h, 0.3)", "h = F.dropout(h, 0.3, training=self.training)"),
    "attention": ("q = self.q(h)[:, None]; h = h + F.scaled_dot_product_attention("
                  "q, q, q, dropout_p=0.3)[:, 0]",
                  "q = self.q(h)[:, None]; h = h + F.scaled_dot_product_attention("
                  "q, q, q, dropout_p=0.3 if self.training else 0.0)[:, 0]"),
}


@pytest.mark.parametrize("kind,batch", [("functional", 32), ("attention", 32),
                                        ("functional", 4)])   # 64 steps an epoch: steady
def test_dropout_on_in_eval_mode_is_named_and_the_fixed_twin_is_silent(ip, kind, batch):
    """With 64 steps an epoch the training runs steady; model.eval() hooks the held-out
    pass again before its one forward."""
    buggy, fixed = BODIES[kind]
    run_cell(ip, SETUP.replace("{body}", buggy))
    _, report = diagnose_cell(ip, TRAIN.format(batch=batch))
    found = [f for f in report.findings if f.check == "eval-dropout"]
    assert found and found[0].severity == "warning", report.findings
    assert "scaled_dot_product_attention" in found[0].message if kind == "attention" else (
        "F.dropout with p=0.3" in found[0].message)
    assert "(forward)" in found[0].where and not report.errors
    run_cell(ip, SETUP.replace("{body}", fixed))
    _, report = diagnose_cell(ip, TRAIN.format(batch=batch))
    assert not [f for f in report.findings if f.severity in ("warning", "problem")]
