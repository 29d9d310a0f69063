"""One held-out batch run twice in eval mode must give one answer: the bugs that break it,
their fixed twins, and the models that sample on purpose.

- Layers kept in a plain Python list (a public report on a multi-task model: its dropout
  layers sat in a list, not an ``nn.ModuleList``, so ``model.eval()`` never reached them
  and dropout stayed on at prediction time): a Dropout, or a BatchNorm whose running
  statistics every evaluation then moves.
- A stochastic-depth layer that drops paths whatever the mode (a public Swin Transformer
  report: its drop path ignored ``model.eval()``, so inference was random).
- Fixed twins: ``nn.ModuleList``, a drop path that checks ``self.training``.
- By design: a VAE-style model that samples in its forward, Monte Carlo dropout (a
  Dropout put back in train mode for evaluation): information, never a warning.

The second forward never changes the training: same parameters bitwise, same RNG draws.
"""

from __future__ import annotations

import pytest
import torch

from conftest import diagnose_cell, run_cell

SETUP = """
import torch
from torch import nn
import torch.nn.functional as F
torch.manual_seed(0)
X, X_val = torch.randn(256, 8), torch.randn(64, 8)
y, y_val = (X[:, 0] > 0).long(), (X_val[:, 0] > 0).long()
forwards = []

class DropPath(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        {guard}
        keep = 1 - self.p
        mask = (keep + torch.rand(x.shape[0], 1)).floor()
        return x * mask / keep

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 32), nn.Linear(32, 2)
        self.drop_path = DropPath(0.3)
        self.extra = {extra}

    def forward(self, x):
        forwards.append(x.shape[0])
        h = torch.relu(self.fc1(x))
        {body}
        return self.fc2(h)

net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-2)
"""

TRAIN = """
for epoch in range(3):
    net.train()
    for i in range(0, 256, 8):
        loss = F.cross_entropy(net(X[i:i + 8]), y[i:i + 8])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    {eval_mode}
    with torch.no_grad():
        val = F.cross_entropy(net(X_val), y_val)
"""

#: kind -> (guard, extra layers, forward body, eval-mode line)
MODELS = {
    "dropout-list": ("", "[nn.Dropout(0.5)]", "h = self.extra[0](h)", ""),
    "dropout-modulelist": ("", "nn.ModuleList([nn.Dropout(0.5)])", "h = self.extra[0](h)", ""),
    "batchnorm-list": ("", "[nn.BatchNorm1d(32)]", "h = self.extra[0](h)", ""),
    "batchnorm-modulelist": ("", "nn.ModuleList([nn.BatchNorm1d(32)])", "h = self.extra[0](h)",
                             ""),
    "drop-path": ("", "None", "h = h + self.drop_path(h)", ""),
    "drop-path-fixed": ("if not self.training: return x", "None", "h = h + self.drop_path(h)",
                        ""),
    "sampling": ("", "None", "h = h + 0.1 * torch.randn_like(h)", ""),
    "mc-dropout": ("", "nn.ModuleList([nn.Dropout(0.5)])", "h = self.extra[0](h)",
                   "net.extra[0].train()"),
}


def _run(ip, kind):
    guard, extra, body, eval_mode = MODELS[kind]
    run_cell(ip, SETUP.replace("{guard}", guard).replace("{extra}", extra)
             .replace("{body}", body))
    _, report = diagnose_cell(ip, TRAIN.replace("{eval_mode}", eval_mode))
    assert not report.errors, report.errors
    found = [f for f in report.findings if f.check in ("eval-determinism", "eval-dropout")]
    return report, found


@pytest.mark.parametrize("kind,fixed", [("dropout-list", "dropout-modulelist"),
                                        ("batchnorm-list", "batchnorm-modulelist"),
                                        ("drop-path", "drop-path-fixed")])
def test_eval_randomness_is_named_and_the_fixed_twin_is_silent(ip, kind, fixed):
    report, found = _run(ip, kind)
    assert [f.check for f in found] == ["eval-determinism"], found
    f = found[0]
    assert f.severity == "warning"
    if kind == "drop-path":
        assert f.where == "net.drop_path" and "rand at" in f.message and "(forward)" in f.message
        assert f.evidence["max_diff"] > 1e-3
    else:
        layer = "Dropout" if kind == "dropout-list" else "BatchNorm1d"
        assert f.where == f"{layer} in net" and "plain list" in f.message
        assert "nn.ModuleList" in f.fix
    if kind == "batchnorm-list":
        assert "running_mean" in f.message
    status = {str(i.point): i.status for i in report.checklist}
    assert status["train-eval-mode"] == "warning"
    report, found = _run(ip, fixed)
    assert found == [] and not [f for f in report.findings if f.severity != "info"]
    status = {str(i.point): i.status for i in report.checklist}
    assert status["train-eval-mode"] == "ok"


@pytest.mark.parametrize("kind", ["sampling", "mc-dropout"])
def test_a_model_that_samples_on_purpose_gets_information_not_a_warning(ip, kind):
    report, found = _run(ip, kind)
    assert [(f.check, f.severity) for f in found] == [("eval-determinism", "info")], found
    assert ("randn_like" in found[0].message if kind == "sampling"
            else "Monte Carlo" in found[0].message)
    assert not [f for f in report.findings if f.severity in ("warning", "problem")]


def test_the_check_runs_one_extra_forward_per_model_and_run(ip):
    """Three held-out rounds: one second forward of one held-out batch (as soon as it costs
    at most 1% of the run so far), then the hook is gone (a healthy model draws no random
    numbers, so no third forward to name them)."""
    run_cell(ip, SETUP.replace("{guard}", "").replace("{extra}", "None").replace("{body}", ""))
    _, report = diagnose_cell(ip, TRAIN.replace("{eval_mode}", ""))
    assert not report.errors and not [f for f in report.findings if f.severity != "info"]
    forwards = ip.user_ns["forwards"]
    assert forwards.count(64) == 3 + 1 and forwards.count(8) == 96


def _train(model_source, diagnose):
    """The DropPath and BatchNorm-in-a-list models, trained with held-out rounds; the
    parameters, buffers and the RNG state at the end."""
    import nbdebug
    namespace: dict = {}
    exec(model_source, namespace)
    torch.manual_seed(1)
    net, opt = namespace["net"], namespace["opt"]
    X, y, X_val = namespace["X"], namespace["y"], namespace["X_val"]
    F = torch.nn.functional

    def loop():
        for _ in range(3):
            net.train()
            for i in range(0, 256, 8):
                loss = F.cross_entropy(net(X[i:i + 8]), y[i:i + 8])
                opt.zero_grad()
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                net(X_val)
    if diagnose:
        with nbdebug.diagnose(quiet=True):
            loop()
        assert any(f.check == "eval-determinism" for f in nbdebug.last_report().findings)
    else:
        loop()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state.update({f"extra.{k}": v.clone() for k, v in namespace["net"].extra[0].state_dict()
                  .items()})
    return state, torch.get_rng_state()


def test_the_second_forward_never_changes_the_training():
    source = (SETUP.replace("{guard}", "")
              .replace("{extra}", "[nn.BatchNorm1d(32)]")
              .replace("{body}", "h = self.extra[0](h)\n        h = h + self.drop_path(h)"))
    bare, rng_bare = _train(source, diagnose=False)
    watched, rng_watched = _train(source, diagnose=True)
    assert bare.keys() == watched.keys()
    for k in bare:
        assert torch.equal(bare[k], watched[k]), k
    assert torch.equal(rng_bare, rng_watched)


def test_a_model_with_its_own_forward_hooks_is_not_run_again(ip):
    """A second forward would run the user's hook again (its side effects)."""
    run_cell(ip, SETUP.replace("{guard}", "").replace("{extra}", "None")
             .replace("{body}", "h = h + self.drop_path(h)"))
    run_cell(ip, "seen = []\nnet.fc1.register_forward_hook(lambda m, a, o: seen.append(1))")
    _, report = diagnose_cell(ip, TRAIN.replace("{eval_mode}", ""))
    assert not [f for f in report.findings if f.check == "eval-determinism"]
    assert len(ip.user_ns["seen"]) == 96 + 3 and ip.user_ns["forwards"].count(64) == 3
    status = {str(i.point): i.status for i in report.checklist}
    assert status["train-eval-mode"] == "ok"


def test_a_second_forward_dearer_than_1pc_of_the_run_so_far_is_not_made(ip):
    """Two training steps, then one held-out forward of 16384 samples: running it again
    would cost far more than 1% of the run, so it waits for a later round (none comes)."""
    run_cell(ip, SETUP.replace("{guard}", "").replace("{extra}", "None")
             .replace("{body}", "h = h + self.drop_path(h)"))
    _, report = diagnose_cell(ip, """
net.train()
for i in range(0, 16, 8):
    loss = F.cross_entropy(net(X[i:i + 8]), y[i:i + 8])
    opt.zero_grad()
    loss.backward()
    opt.step()
net.eval()
with torch.no_grad():
    net(torch.randn(16384, 8))
""")
    assert not report.errors and ip.user_ns["forwards"].count(16384) == 1
    assert not [f for f in report.findings if f.check == "eval-determinism"]
