"""A report holds summaries of the data, never the data: no run of raw training values.

The trainings' inputs and targets are large tensors of known random values (inputs in
[1000, 2000), regression targets in [-5000, -4000)), trained through the real
``%%diagnose`` with a held-out loader, once healthy and once with a NaN that nbdebug
replays. Everything nbdebug hands out is scanned for the raw values: the saved JSON
report, the text and HTML renderings (the static bundle), the live dashboard's widgets
and the sidebar's messages (start, snapshots, findings, done). No eight numbers in a row
are raw values, hardly any number is one at all, and doubling the data set (same number
of steps) leaves the report's size the same.
"""

from __future__ import annotations

import bisect
import json
import re

import pytest
import torch

from conftest import diagnose_cell, run_cell
from test_frontend_protocol import RecordingComm, bridge  # noqa: F401  (fixture)

SETUP = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
g = torch.Generator().manual_seed(1234)
X = torch.rand({n}, 32, generator=g) * 1000 + 1000
Y = torch.rand({n}, 4, generator=g) * 1000 - 5000
cut = {n} * 3 // 4
train = DataLoader(TensorDataset(X[:cut], Y[:cut]), batch_size={batch}, shuffle=True)
val = DataLoader(TensorDataset(X[cut:], Y[cut:]), batch_size={batch})
torch.manual_seed(0)
layers = [nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)]
model = nn.Sequential(*layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
"""
TRAIN = """
for epoch in range(5):
    model.train()
    for xb, yb in train:
        loss = nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
    model.eval()
    with torch.no_grad():
        for xb, yb in val:
            model(xb)
"""
# the same data into a log of a shifted input: NaN at the first step, replayed by nbdebug
NAN_MODEL = """
class Shift(nn.Module):
    def forward(self, x):
        return torch.log(x - 1500)
model = nn.Sequential(Shift(), *layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
"""
N, BATCH, STEPS = 256, 16, 5 * 12   # past the flush at step 50: live views redraw

#: a number literal with its digits (JSON floats, and numbers inside text)
_NUMBER = re.compile(r"-?\d+\.(\d+)(?:[eE]([-+]?\d+))?")
MIN_DECIMALS = 3          # fewer digits than this cannot tell a raw value from a summary
RUN = 8                   # this many raw values in a row is a leaked sample


def _raw_values(ns) -> list[float]:
    return sorted(set(ns["X"].reshape(-1).tolist()) | set(ns["Y"].reshape(-1).tolist()))


def _is_raw(literal: re.Match, raw: list[float]) -> bool:
    decimals, exponent = len(literal.group(1)), int(literal.group(2) or 0)
    if decimals - exponent < MIN_DECIMALS:
        return False
    value = float(literal.group(0))
    tol = 0.5 * 10.0 ** (exponent - decimals)        # half a unit of its last digit
    i = bisect.bisect_left(raw, value - tol)
    return i < len(raw) and raw[i] <= value + tol


def _raw_in(text: str, raw: list[float]) -> tuple[int, int]:
    """(longest run of consecutive numbers that are raw values, how many are raw)."""
    longest = current = count = 0
    for literal in _NUMBER.finditer(text):
        if _is_raw(literal, raw):
            count += 1
            current += 1
            longest = max(longest, current)
        else:
            current = 0
    return longest, count


def _no_samples(name: str, text: str, raw: list[float]) -> None:
    longest, count = _raw_in(text, raw)
    assert longest < RUN, f"{name}: {longest} raw training values in a row"
    assert count <= 4, f"{name}: {count} raw training values"


def _everything_shown(ip, tmp_path, bridge, flags: str = ""):  # noqa: F811
    """Train under %%diagnose with the live dashboard and the sidebar; all they show."""
    from nbdebug.magics import display as nb_display
    from nbdebug.ui import html
    from nbdebug.ui.text import render_text
    saved = tmp_path / "report.json"
    result, report = diagnose_cell(ip, TRAIN, flags=f"--keep-live --save {saved} {flags}")
    assert result.success and report.run["steps"] == STEPS
    dash = nb_display.LAST_DASHBOARD[0]
    bundle = html.bundle(report, None)
    shown = {
        "saved report": saved.read_text(),
        "report.to_json": report.to_json(),
        "text report": render_text(report),
        "bundle text/plain": bundle["text/plain"],
        "bundle text/html": bundle["text/html"],
        "bundle json": json.dumps(bundle["application/vnd.nbdebug.report+json"]),
        "dashboard header": dash.header.value,
        "dashboard checklist": dash.checklist.value,
        "dashboard live checklist": dash._checklist_html,
        "sidebar messages": "\n".join(json.dumps(m) for _, m in bridge.comms[0].sent),
    }
    return report, shown


def test_reports_dashboards_and_sidebar_messages_hold_no_raw_samples(
        ip, tmp_path, bridge, notebook_frontend):  # noqa: F811
    run_cell(ip, SETUP.format(n=N, batch=BATCH))
    raw = _raw_values(ip.user_ns)
    assert len(raw) > 9_000
    report, shown = _everything_shown(ip, tmp_path, bridge)
    assert report.finding("input-range") is not None     # the inputs were looked at
    assert "eval/val" in report.timelines or "heldout_mse/val" in report.timelines
    assert sum(m["type"] == "snapshot" for _, m in bridge.comms[0].sent) >= 2
    assert "nbd-checklist" in shown["dashboard live checklist"]
    for name, text in shown.items():
        _no_samples(name, text, raw)


def test_a_replayed_nan_names_the_op_and_not_the_batch(ip, tmp_path, bridge,  # noqa: F811
                                                       notebook_frontend):
    run_cell(ip, SETUP.format(n=N, batch=BATCH))
    run_cell(ip, NAN_MODEL)
    raw = _raw_values(ip.user_ns)
    report, shown = _everything_shown(ip, tmp_path, bridge)
    nan = report.finding("nan-origin")
    assert nan is not None and nan.evidence["replay"]["op"] == "log"
    for name, text in shown.items():
        _no_samples(name, text, raw)


def test_the_report_does_not_grow_with_the_data_set(ip, tmp_path, bridge,  # noqa: F811
                                                    notebook_frontend):
    """Twice the samples in the same number of steps: the same report size."""
    sizes = []
    for scale in (1, 2):
        run_cell(ip, SETUP.format(n=N * scale, batch=BATCH * scale))
        data_bytes = ip.user_ns["X"].nbytes + ip.user_ns["Y"].nbytes
        report, shown = _everything_shown(ip, tmp_path / str(scale), bridge)
        sizes.append((data_bytes, len(shown["saved report"]),
                      len(shown["sidebar messages"]), len(shown["bundle text/html"])))
        bridge.comms[0].sent.clear()
    (data_1, *out_1), (data_2, *out_2) = sizes
    assert data_2 == 2 * data_1
    for a, b in zip(out_1, out_2):
        assert b <= 1.1 * a, sizes                 # the data doubled, what is shown did not


def test_the_scan_finds_a_leaked_batch():
    """The detector itself: a batch written into a report is found, summaries are not."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 32, generator=g) * 1000 + 1000
    raw = sorted(set(x.reshape(-1).tolist()))
    leaked = json.dumps({"note": "batch", "values": x[1].tolist()})
    assert _raw_in(leaked, raw)[0] == 32
    as_text = f"first batch: {x[2, :10]}"                 # torch's repr, 4 decimals
    assert _raw_in(as_text, raw)[0] >= RUN
    summary = json.dumps({"mean": x.mean().item(), "std": x.std().item(),
                          "min": x.min().item(), "max": x.max().item()})
    assert _raw_in(summary, raw)[0] <= 2
