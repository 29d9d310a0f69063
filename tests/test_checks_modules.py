"""Every kind of module: lazy modules, parametrizations (weight norm, spectral norm) and
torch.compile'd models are watched without an internal error."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from conftest import diagnose_cell, run_cell
from nbdebug.capture.structure import describe_model, describe_optimizer

DATA = """
import torch
from torch import nn
torch.manual_seed(0)
X = torch.randn(256, 20)
y = (X[:, 0] + X[:, 1] > 0).long()
"""
TRAIN = """
for epoch in range(3):
    for i in range(0, 256, 32):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
        loss.backward()
        opt.step()
"""


def _diagnose(ip, model_code: str):
    res = run_cell(ip, DATA + model_code)
    assert res.error_in_exec is None, res.error_in_exec
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result, report = diagnose_cell(ip, TRAIN)
    assert result.error_in_exec is None
    return report


def test_describe_model_skips_parameters_a_lazy_module_has_not_made_yet():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))
    info = describe_model("net", net, set())
    assert [p.name for p in info.params] == ["net.2.weight", "net.2.bias"]
    opt = describe_optimizer("opt", torch.optim.SGD(net.parameters(), lr=0.1), {})
    assert opt.groups[0].param_ndims == [-1, -1, 2, 1]
    net(torch.zeros(1, 5))                      # materialised: described in full
    assert len(describe_model("net", net, set()).params) == 4


def test_lazy_model_materialised_before_the_cell(ip):
    report = _diagnose(ip, "net = nn.Sequential(nn.LazyLinear(32), nn.ReLU(), nn.LazyLinear(2))\n"
                           "net(X[:1])\nopt = torch.optim.Adam(net.parameters(), lr=1e-2)\n")
    assert not report.errors, report.errors
    assert report.run["steps"] == 24
    assert report.status(17) == "ok"            # the lazy layers' weights were checked
    assert not report.problems and not report.warnings, report.findings


def test_lazy_model_materialised_inside_the_cell(ip):
    report = _diagnose(ip, "net = nn.Sequential(nn.LazyLinear(32), nn.ReLU(), nn.LazyLinear(2))\n"
                           "opt = torch.optim.Adam(net.parameters(), lr=1e-2)\n")
    assert not report.errors, report.errors


@pytest.mark.parametrize("wrap", [
    "torch.nn.utils.parametrizations.weight_norm",
    "torch.nn.utils.parametrizations.spectral_norm",
    "torch.nn.utils.weight_norm",
    "torch.nn.utils.spectral_norm",
])
def test_parametrized_layers(ip, wrap):
    report = _diagnose(ip, f"net = nn.Sequential({wrap}(nn.Linear(20, 32)), nn.ReLU(), "
                           f"{wrap}(nn.Linear(32, 2)))\n"
                           "opt = torch.optim.Adam(net.parameters(), lr=1e-2)\n")
    assert not report.errors, report.errors
    assert report.run["steps"] == 24
    assert not report.problems and not report.warnings, report.findings


def test_compiled_model(ip):
    report = _diagnose(ip, "net = torch.compile(nn.Sequential(nn.Linear(20, 32), nn.ReLU(), "
                           "nn.Linear(32, 2)), backend='eager')\n"
                           "opt = torch.optim.Adam(net.parameters(), lr=1e-2)\n")
    assert not report.errors, report.errors
    assert report.run["steps"] == 24
    assert not report.problems and not report.warnings, report.findings

