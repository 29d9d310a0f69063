"""Fuzzing the core: odd flags and odd batches never crash the cell or nbdebug."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

import nbdebug
from conftest import diagnose_cell, run_cell

FLAG_WORDS = ["--save", "--every", "--quiet", "--checks", "--model", "--optimizer", "--loader",
              "0", "-1", "3", "abc", "net", "opt", "X", "all", "none", "13,stuck", "-stuck",
              "bogus", "--bogus", "'quoted'", "--every=2", "1e3", ""]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(FLAG_WORDS), max_size=5))
def test_any_flag_string_is_a_clean_run_or_a_one_line_usage_error(ip, capsys, words):
    from IPython.core.error import UsageError
    run_cell(ip, "import torch\nfrom torch import nn\nnet = nn.Linear(2, 1)\n"
                 "opt = torch.optim.Adam(net.parameters())\nX = torch.ones(4, 2)")
    capsys.readouterr()
    line = " ".join(words).replace("--save", "--quiet")   # never write files from a fuzzer
    result, _ = diagnose_cell(ip, "loss = net(X).sum()\nloss.backward()\nopt.step()",
                              flags=line)
    err = capsys.readouterr().err
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        assert isinstance(error, UsageError), repr(error)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def _odd_values():
    scalars = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=5), st.booleans(),
                        st.floats(allow_nan=True, allow_infinity=True))
    tensors = st.sampled_from([
        torch.empty(0), torch.tensor(3.0), torch.tensor(True), torch.ones(4, 2, dtype=torch.int64),
        torch.ones(4, 2, dtype=torch.bool), torch.ones(4, 2, dtype=torch.complex64),
        torch.ones(4, 2, dtype=torch.float16), torch.ones(4, 2, dtype=torch.bfloat16),
        torch.full((4, 2), math.nan), torch.full((4, 2), math.inf),
        torch.eye(4, 2).to_sparse(), torch.randn(4, 2), torch.zeros(4, 0),
    ])
    leaf = st.one_of(scalars, tensors)
    return st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner, inner),
        st.dictionaries(st.sampled_from(["x", "y", "label", "input_ids", "other"]), inner,
                        max_size=3)), max_leaves=6)


class Anything(nn.Module):
    """A model that takes any batch and still trains its one parameter."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.lin = nn.Linear(2, 2)

    def forward(self, batch):
        return self.lin(self.w.expand(3, 2)), batch


@settings(max_examples=80, deadline=None)
@given(batches=st.lists(_odd_values(), min_size=1, max_size=4))
# a NaN batch with a sparse tensor beside it: the NaN replay looks at the dense one only
@example(batches=[(torch.full((4, 2), math.nan), torch.eye(4, 2).to_sparse())])
def test_odd_batches_never_crash_and_never_error(batches):
    torch.manual_seed(0)
    model = Anything()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with nbdebug.diagnose(quiet=True, every=1):
        for batch in batches:
            out, _ = model(batch)
            loss = out.pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    report = nbdebug.last_report()
    assert report.run["steps"] == len(batches)
    assert report.errors == [], report.errors[0]["traceback"]


@pytest.mark.parametrize("x", [
    torch.full((8, 3), math.nan), torch.full((8, 3), math.inf),
    torch.ones(8, 3, dtype=torch.float16), torch.ones(8, 3, dtype=torch.bfloat16),
], ids=["all-nan", "all-inf", "half", "bfloat16"])
def test_odd_inputs_into_a_real_model(x):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).to(x.dtype)
    opt = torch.optim.Adam(net.parameters())
    y = torch.zeros(8, dtype=torch.long)
    with nbdebug.diagnose(quiet=True, every=1):
        for _ in range(3):
            loss = nn.functional.cross_entropy(net(x).float(), y)
            opt.zero_grad(); loss.backward(); opt.step()
    report = nbdebug.last_report()
    assert report.errors == []
    if not torch.isfinite(x).all():
        f = report.finding("nan-origin")
        assert f is not None and f.evidence["phase"] == "input"
    else:
        # Adam in float16 really breaks (eps=1e-8 is 0 in half): the verdict matches reality
        went_bad = not all(torch.isfinite(p).all() for p in net.parameters())
        assert (report.status(13) == "problem") == went_bad
