"""DESIGN.md invariants 1, 2 and 4 through the real magic.

Same seed and data with and without %%diagnose: bitwise-identical parameters and losses,
identical RNG states and batch order; nothing of nbdebug left behind however the cell ends.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from conftest import diagnose_cell, run_cell

SETUP = {
    "mlp": """
import random, numpy as np, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
random.seed(1); np.random.seed(1); torch.manual_seed(1)
X = torch.randn(256, 12); y = torch.randint(0, 3, (256,))
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
""",
    "cnn": """
import random, numpy as np, torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
random.seed(2); np.random.seed(2); torch.manual_seed(2)
X = torch.randn(128, 1, 8, 8); y = torch.randint(0, 4, (128,))
loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                      nn.Dropout2d(0.2), nn.Flatten(), nn.Linear(6 * 64, 4))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""",
}
TRAIN = """
losses, order = [], []
for epoch in range(2):
    model.train()
    for xb, yb in loader:
        order.append(yb.clone())
        loss = nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.detach().clone())
    model.eval()
    with torch.no_grad():
        model(X[:64])
state = (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())
"""


def _run(ip, name, diagnose):
    run_cell(ip, SETUP[name])
    if diagnose:
        result, report = diagnose_cell(ip, TRAIN, flags="--quiet --every 1")
        assert not report.errors, report.errors
    else:
        result = run_cell(ip, TRAIN)
    assert result.error_in_exec is None
    ns = ip.user_ns
    return ({k: v.clone() for k, v in ns["model"].state_dict().items()},
            ns["losses"], ns["order"], ns["state"])


@pytest.mark.parametrize("name", SETUP)
def test_diagnosis_never_changes_the_training(ip, name):
    params_a, losses_a, order_a, state_a = _run(ip, name, diagnose=False)
    params_b, losses_b, order_b, state_b = _run(ip, name, diagnose=True)
    assert params_a.keys() == params_b.keys()
    for k in params_a:
        assert torch.equal(params_a[k], params_b[k]), k          # bitwise, buffers too
    assert len(losses_a) == len(losses_b) == 16
    assert all(torch.equal(a, b) for a, b in zip(losses_a, losses_b))
    assert all(torch.equal(a, b) for a, b in zip(order_a, order_b))   # same batches
    assert torch.equal(state_a[0], state_b[0])                        # torch RNG
    assert (state_a[1] == state_b[1]).all()                           # numpy RNG
    assert state_a[2] == state_b[2]                                   # random


def _nbdebug_leftovers() -> list[str]:
    from torch.nn.modules import module
    from torch.optim import optimizer
    left = []
    for name in ("_global_forward_hooks", "_global_forward_pre_hooks",
                 "_global_backward_hooks", "_global_forward_hooks_always_called"):
        if getattr(module, name, None):
            left.append(name)
    for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks"):
        if getattr(optimizer, name, None):
            left.append(name)
    for owner, attr in ((torch.Tensor, "backward"), (torch.autograd, "backward"),
                        (DataLoader, "__iter__"), (_BaseDataLoaderIter, "__next__"),
                        (F, "cross_entropy"), (F, "kl_div"), (F, "mse_loss")):
        if hasattr(getattr(owner, attr), "__wrapped__"):
            left.append(f"{getattr(owner, '__name__', owner)}.{attr}")
    return left


@pytest.mark.parametrize("ending", ["normal", "exception", "interrupt", "exit"])
def test_nothing_left_behind(ip, ending):
    tail = {"normal": "", "exception": "raise RuntimeError('x')",
            "interrupt": "raise KeyboardInterrupt", "exit": "raise SystemExit(1)"}[ending]
    run_cell(ip, SETUP["mlp"])
    assert _nbdebug_leftovers() == []
    body = TRAIN.replace("for epoch in range(2):", "for epoch in range(1):") + tail
    diagnose_cell(ip, body)
    assert _nbdebug_leftovers() == []


def test_leftover_detector_sees_an_attached_session():
    import nbdebug
    session = nbdebug.diagnose(quiet=True)
    session.__enter__()
    try:
        left = _nbdebug_leftovers()
    finally:
        session.__exit__(None, None, None)
    assert "_global_forward_hooks" in left and "Tensor.backward" in left
    assert _nbdebug_leftovers() == []


def test_failure_inside_nbdebug_never_breaks_the_cell(ip, capsys):
    """Invariant 3: a broken statistic is recorded as an internal error, training goes on."""
    from nbdebug.capture.probes import forward, inputs
    run_cell(ip, SETUP["mlp"])
    original = inputs.guard

    def broken(t):
        raise RuntimeError("stat exploded")
    inputs.guard = forward.guard = broken
    try:
        result, report = diagnose_cell(ip, TRAIN)
    finally:
        inputs.guard = forward.guard = original
    assert result.error_in_exec is None and len(ip.user_ns["losses"]) == 16
    assert report.errors and "stat exploded" in report.errors[0]["error"]
    err = capsys.readouterr().err
    assert "internal error" in err and "training unaffected" in err


COPY_WHILE_TRAINING = """
import copy, io
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
X = torch.randn(64, 4); y = (X[:, 0] > 0).long()
hooked, copies = [], []
for i in range(40):
    opt.zero_grad(); nn.functional.cross_entropy(net(X), y).backward(); opt.step()
    if i in (5, 25):           # a lean step and a steady one: each hooks the model's root
        hooked.append(len(net._forward_hooks) + len(net._forward_pre_hooks)
                      + (vars(net).get("_compiled_call_impl") is not None))
        best = copy.deepcopy(net)
        buf = io.BytesIO(); torch.save(net, buf); buf.seek(0)
        copies += [best, torch.load(buf, weights_only=False), copy.copy(net)]
"""


def test_copying_and_pickling_the_model_mid_training_work_as_without_nbdebug(ip):
    """Early stopping code deep-copies or saves the whole model inside the loop."""
    run_cell(ip, "import torch\nfrom torch import nn")
    result, report = diagnose_cell(ip, COPY_WHILE_TRAINING)
    assert result.error_in_exec is None and not report.errors, report.errors
    ns = ip.user_ns
    assert min(ns["hooked"]) >= 1                  # the case the test is about
    for copy_ in ns["copies"]:                     # the copies' hooks do nothing
        assert copy_(ns["X"]).shape == (64, 2)
        assert vars(copy_).get("_compiled_call_impl") is None
    assert ns["copies"][3](ns["X"]).equal(ns["copies"][4](ns["X"]))   # step 25's weights
    assert not ns["copies"][3](ns["X"]).equal(ns["net"](ns["X"]))
    assert _nbdebug_leftovers() == [] and not ns["net"]._forward_hooks
    assert "_compiled_call_impl" not in vars(ns["net"])


def _train_with_loss(ip, loss: str) -> None:
    """Five steps of a linear model under ``%%diagnose``, the loss computed by ``loss``:
    nbdebug must see a cross-entropy."""
    result, report = diagnose_cell(ip, f"""
torch.manual_seed(0)
net = nn.Linear(4, 3)
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
X, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
for _ in range(5):
    opt.zero_grad(); {loss}(net(X), y).backward(); opt.step()
""")
    assert result.error_in_exec is None and not report.errors
    assert report.run["losses"] == ["cross_entropy"]


def test_a_loss_bound_in_the_users_own_module_is_watched_and_given_back(ip, tmp_path,
                                                                        monkeypatch):
    """``from torch.nn.functional import cross_entropy`` inside a helper module the training
    imports: the loss is seen, and the module's name is the original function after."""
    (tmp_path / "nbd_helpers_losses.py").write_text(
        "from torch.nn.functional import cross_entropy\n\n"
        "def compute(out, y):\n    return cross_entropy(out, y)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    run_cell(ip, "import torch\nfrom torch import nn\nimport nbd_helpers_losses as helpers")
    _train_with_loss(ip, "helpers.compute")
    helpers = ip.user_ns["helpers"]
    assert helpers.cross_entropy is F.cross_entropy and not hasattr(F.cross_entropy,
                                                                     "__wrapped__")
    assert _nbdebug_leftovers() == []


def test_a_loss_bound_before_the_cell_is_watched_and_given_back_unchanged(ip):
    run_cell(ip, "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
                 "from torch.nn.functional import mse_loss\nloss_fn = F.cross_entropy\n"
                 "original = (loss_fn, mse_loss)")
    _train_with_loss(ip, "loss_fn")
    ns = ip.user_ns
    assert ns["loss_fn"] is ns["original"][0] and ns["mse_loss"] is ns["original"][1]
    assert ns["loss_fn"] is torch.nn.functional.cross_entropy
    assert _nbdebug_leftovers() == []
