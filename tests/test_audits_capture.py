"""The audit evidence through the real ``%%diagnose``: recorded, and the training unchanged."""

from __future__ import annotations

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

def build():
    torch.manual_seed(0)
    X = torch.randn(70, 3, 6, 6)
    y = (X.mean((1, 2, 3)) > 0).long()
    dl = DataLoader(TensorDataset(X, y), batch_size=23, shuffle=True)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    return dl, net, opt
"""

TRAIN = """
dl, net, opt = build()
for epoch in range(2):
    for xb, yb in dl:
        out = net(xb)
        target = F.softmax(torch.randn_like(out), dim=1)
        loss = F.cross_entropy(out, yb) + F.kl_div(F.log_softmax(out, 1), target,
                                                   reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
state = [p.detach().clone() for p in net.parameters()] + [
    b.clone() for b in net.buffers()]
rng = torch.get_rng_state()
"""


def test_audit_capture_changes_nothing_and_records_evidence(ip):
    assert run_cell(ip, SETUP).error_in_exec is None
    assert run_cell(ip, TRAIN).error_in_exec is None
    plain_state, plain_rng = ip.user_ns["state"], ip.user_ns["rng"]
    result, report = diagnose_cell(ip, TRAIN, flags="--quiet --every 1")
    assert result.error_in_exec is None and not report.errors, report.errors
    import torch
    for a, b in zip(plain_state, ip.user_ns["state"]):
        assert torch.equal(a, b)
    assert torch.equal(plain_rng, ip.user_ns["rng"])
    statuses = {str(i.point): i.status for i in report.checklist}
    # 70 = 23 + 23 + 23 + 1: the last batch of one sample reached BatchNorm in training;
    # advice (info, item ok) while train-mode and eval-mode results do not drift apart
    assert statuses["12"] == "ok"
    assert statuses["20"] == "ok" and statuses["2"] == "ok" and statuses["6"] == "ok"
    bn = next(f for f in report.findings if f.check == "bn-batch")
    assert bn.severity == "info"
    assert bn.evidence["batch_sizes"] == {"net.1": {"1": 2, "23": 6}}


def test_audit_capture_survives_odd_inputs(ip):
    """Bool inputs, 0-d targets and a kl_div on 1-D vectors: recorded or skipped, no error."""
    assert run_cell(ip, """
        import torch
        import torch.nn.functional as F
        from torch import nn
        torch.manual_seed(0)
        class Gate(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(5, 4)
            def forward(self, mask):
                return self.fc(mask.float())
        gate = Gate()
        opt = torch.optim.Adam(gate.parameters(), lr=1e-3)
    """).error_in_exec is None
    result, report = diagnose_cell(ip, """
        for step in range(6):
            mask = torch.rand(8, 5) > 0.5
            out = gate(mask)
            loss = F.kl_div(F.log_softmax(out[0], 0), F.softmax(out[1].detach(), 0),
                            reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
    """)
    assert result.error_in_exec is None and not report.errors, report.errors
    statuses = {str(i.point): i.status for i in report.checklist}
    assert statuses["20"] == "ok"
