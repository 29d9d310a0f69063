"""A held-out round that eval mode broke: spectral norm run in eval mode first, and the fix.

``nn.utils.spectral_norm`` keeps an estimate of the weight's largest singular value that
only training-mode forwards refine; a model evaluated before any training forward divides
its weights by a wrong estimate, and that first held-out loss is far off (TrainCheck's
benchmark of real silent errors has this one: held-out loss in the hundred-thousands, then
normal). The fixed twin evaluates after each epoch instead of before.
"""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
import torch.nn.functional as F
torch.manual_seed(0)
X, X_val = torch.randn(256, 8), torch.randn(64, 8)
y, y_val = (X[:, 0] > 0).long(), (X_val[:, 0] > 0).long()
net = nn.Sequential(nn.utils.spectral_norm(nn.Linear(8, 64)), nn.ReLU(),
                    nn.utils.spectral_norm(nn.Linear(64, 2)))
opt = torch.optim.Adam(net.parameters(), lr=1e-2)

def evaluate():
    net.eval()
    with torch.no_grad():
        return F.cross_entropy(net(X_val), y_val).item()

def epoch():
    net.train()
    for i in range(0, 256, 32):
        loss = F.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def test_a_first_held_out_round_broken_by_spectral_norm_names_the_layers(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, "for _ in range(4):\n    evaluate()\n    epoch()")
    found = [f for f in report.findings if f.check == "eval-consistency"]
    assert found and found[0].severity == "warning", report.findings
    ev = found[0].evidence
    assert ev["round"] == 1 and ev["loss"] > 5 * ev["next_loss"]
    assert ev["norm_layers"] == ["net.0", "net.2"] and "spectral" in found[0].message
    assert not report.errors


def test_the_fixed_twin_evaluates_after_training_and_is_silent(ip):
    run_cell(ip, SETUP)
    _, report = diagnose_cell(ip, "for _ in range(4):\n    epoch()\n    evaluate()")
    assert len(report.timelines["eval/X_val"]["values"]) == 4
    assert not [f for f in report.findings if f.severity in ("warning", "problem")]
