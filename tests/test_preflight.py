"""``--preflight``: the experiments an expert runs before a long training, through the real
``%%diagnose`` in a real IPython shell.

Each experiment has a buggy cell it flags at step 0 (before the real training's second
step) and a healthy cell it leaves silent. Pre-flight never changes the training: the
bitwise test runs the invariant cells with and without it.
"""

from __future__ import annotations

import pathlib

import pytest
import torch
from conftest import diagnose_cell, run_cell
from IPython.core.error import UsageError
from test_corpus import parse_case
from test_invariants import SETUP, TRAIN, _nbdebug_leftovers

FLAGS = "--quiet --preflight --preflight-budget 60"

DIGITS = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits
torch.manual_seed(0)
d = load_digits()
X = torch.tensor(d.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(d.target)
"""
LOOP = """
for epoch in range(2):
    for xb, yb in loader:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
"""


def _digits(ip, extra: str, body: str = LOOP, flags: str = FLAGS):
    run_cell(ip, DIGITS + extra)
    result, report = diagnose_cell(ip, body, flags=flags)
    assert result.error_in_exec is None, result.error_in_exec
    assert not report.errors, report.errors
    return report


HEALTHY = """
loader = DataLoader(TensorDataset(X[:1024], y[:1024]), batch_size=128, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
"""


def _ours(report):
    return {f.check: f for f in report.findings if f.check.startswith("preflight")}


def test_healthy_training_gets_every_experiment_and_no_finding(ip):
    report = _digits(ip, HEALTHY)
    pf = report.run["preflight"]
    assert pf["ran"] == ["init_loss", "overfit", "inputs", "lr_range", "labels"], pf
    assert not _ours(report), [(f.check, f.message) for f in report.findings]
    for key in ("1", "3", "10", "stuck", "inputs-used"):
        assert {str(c.point): c.status for c in report.checklist}[key] == "ok", key
    # the curves are in the report
    for key in ("overfit", "inputs", "lr_sweep", "labels"):
        assert len(report.timelines[f"preflight/{key}"]["steps"]) >= 5, key


def test_loss_at_init_names_the_layer_whose_scale_is_off(ip):
    report = _digits(ip, HEALTHY + """
with torch.no_grad():
    nn.init.normal_(model[2].weight, std=3.0)
""")
    f = _ours(report)["preflight-init-loss"]
    assert f.severity == "problem" and f.point == 1 and f.step == 0
    assert f.where == "model.2 (Linear)", f.where
    assert f.evidence["loss"] > 3 * f.evidence["expected"]


PRODUCT = """
import torch
from torch import nn
torch.manual_seed(0)
X = torch.randn(384, 8)
y = ((X[:, 0] * X[:, 1]) > 0).long()
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU())
        self.head = nn.Linear(64, 2)
    def forward(self, x):
        return self.head(FEATURES)
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
"""
PRODUCT_LOOP = """
for epoch in range(2):
    for i in range(0, 384, 32):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
"""


@pytest.mark.parametrize("features, flagged", [("self.body(x).detach()", True),
                                               ("self.body(x)", False)])
def test_overfit_one_batch_says_where_no_gradient_reaches(ip, features, flagged):
    """A forward that detaches the hidden features (a debugging leftover): only the head
    learns, and a copy cannot memorise one batch; without the detach it can."""
    run_cell(ip, PRODUCT.replace("FEATURES", features))
    result, report = diagnose_cell(ip, PRODUCT_LOOP, flags=FLAGS)
    assert result.error_in_exec is None and not report.errors, report.errors
    f = _ours(report).get("preflight-overfit")
    if not flagged:
        assert f is None and report.run["preflight"]["ran"][:2] == ["init_loss", "overfit"]
        return
    assert f is not None and f.severity == "problem" and f.step == 0 and f.point == "stuck"
    assert f.where == "net.body.0.weight", f.where
    assert "no gradient reaches" in f.message


def test_input_independent_model_is_flagged(ip):
    report = _digits(ip, """
loader = DataLoader(TensorDataset(X[:1024], y[:1024]), batch_size=64, shuffle=True)
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 128)
        self.head = nn.Linear(128, 10)
    def forward(self, x):
        h = torch.relu(self.enc(x))
        h = h.mean(0, keepdim=True).expand(len(x), -1)   # bug: one summary for the batch
        return self.head(h)
model = Net()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""")
    f = _ours(report)["preflight-inputs"]
    assert f.severity == "problem" and f.point == "inputs-used" and f.step == 0
    assert "preflight-overfit" not in _ours(report)          # one cause, one finding
    assert report.status("inputs-used") == "problem"


def test_lr_30x_too_high_is_flagged_before_the_second_step(ip):
    """SGD with momentum at 30x a good lr: pre-flight says so at step 0."""
    report = _digits(ip, """
loader = DataLoader(TensorDataset(X[:1024], y[:1024]), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=1.5, momentum=0.9)     # 30x 0.05
""")
    f = _ours(report)["preflight-lr-too-high"]
    assert f.severity == "problem" and f.point == 3 and f.step in (0, 1)
    suggested = f.evidence["suggested"]
    assert suggested < 1.5 / 10, suggested
    assert report.status(3) == "problem"


def test_good_sgd_lr_is_silent(ip):
    report = _digits(ip, """
loader = DataLoader(TensorDataset(X[:1024], y[:1024]), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
""")
    assert not _ours(report), [(f.check, f.message) for f in report.findings]
    assert "lr_range" in report.run["preflight"]["ran"]


def test_lr_far_too_small_is_a_stuck_warning(ip):
    report = _digits(ip, HEALTHY.replace("lr=1e-3", "lr=1e-7"))
    f = _ours(report)["preflight-lr-too-small"]
    assert f.severity == "warning" and f.point == "stuck" and f.step == 0
    assert f.evidence["suggested"] > 1e-5


def test_misaligned_labels_without_held_out_data_are_flagged_at_step_0(ip):
    report = _digits(ip, """
y_bad = y[:1024][torch.randperm(1024)]                 # bug: labels shuffled apart from X
loader = DataLoader(TensorDataset(X[:1024], y_bad), batch_size=128, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""")
    f = _ours(report)["preflight-labels"]
    assert f.severity == "problem" and f.point == 10 and f.step == 0
    assert f.evidence["real_gain"] < 0.05
    assert report.status(10) == "problem"
    assert report.finding("label-mismatch") is None       # no held-out data: only pre-flight


@pytest.mark.parametrize("classes", [10, 2])
@pytest.mark.parametrize("bad", [True, False])
def test_small_batches_gather_samples_for_the_label_control(ip, bad, classes):
    """Batches of 32: the label control waits for 128 samples (256 with two classes), a
    copy of the model at init kept, runs at the end of the step that completes them, flags
    shuffled labels and not real ones."""
    labels = "y[:1024]" if classes == 10 else "(y[:1024] >= 5).long()"
    if bad:
        labels += "[torch.randperm(1024)]"
    report = _digits(ip, f"""
loader = DataLoader(TensorDataset(X[:1024], {labels}), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, {classes}))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""")
    pf = report.run["preflight"]
    assert "labels" in pf["ran"], pf
    k = 4 if classes == 10 else 8
    assert pf["gathered"]["labels"] == {"step": k - 1, "batches": k, "samples": 32 * k}, pf
    f = _ours(report).get("preflight-labels")
    if bad:
        assert f is not None and f.step == k - 1, report.run["preflight"]
        assert f"first {k} training batches" in f.message
        assert report.status(10) == "problem"
    else:
        assert f is None and report.status(10) == "ok"


def test_the_label_control_never_gathers_a_sample_twice(ip):
    """A first epoch smaller than the control needs: it does not run (the second epoch's
    samples would sit in both halves and let memorised labels look learnt)."""
    report = _digits(ip, """
loader = DataLoader(TensorDataset(X[:96], y[:96]), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""")
    pf = report.run["preflight"]
    assert pf["skipped"]["labels"].startswith("the first epoch held 96 training samples"), pf


def test_a_run_too_short_for_the_label_control_says_so(ip):
    report = _digits(ip, """
loader = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""", body=LOOP.replace("range(2)", "range(1)"))
    pf = report.run["preflight"]
    assert "run ended after 64 training samples" in pf["skipped"]["labels"], pf
    assert any("labels skipped" in n for n in report.notes)


def test_without_the_flag_nothing_runs(ip):
    report = _digits(ip, HEALTHY, flags="--quiet")
    assert "preflight" not in report.run and not _ours(report)
    assert report.status("inputs-used") == "not_checked"


def test_a_model_that_does_not_deep_copy_gets_a_note(ip):
    report = _digits(ip, """
import threading
loader = DataLoader(TensorDataset(X[:512], y[:512]), batch_size=64, shuffle=True)
class Net(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        self.lock = threading.Lock()
model = Net()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
""")
    assert any("deep-copied" in n for n in report.notes), report.notes
    assert report.run["steps"] == 16 and not _ours(report)


def test_custom_loss_arithmetic_and_gans_skip_with_a_note(ip):
    report = _digits(ip, HEALTHY, body="""
for xb, yb in loader:
    opt.zero_grad()
    out = model(xb)
    loss = nn.functional.cross_entropy(out / 2.0, yb)      # the loss sees a scaled output
    loss.backward()
    opt.step()
""")
    assert any("pre-flight" in n and "loss" in n for n in report.notes), report.notes
    assert not _ours(report)
    case = parse_case(TESTS / "cases" / "audit_healthy_gan_bce.py")
    run_cell(ip, case["setup"])
    result, report = diagnose_cell(ip, case["body"], flags=FLAGS)
    assert result.error_in_exec is None and not report.errors
    assert any("several models" in n for n in report.notes), report.notes


def test_an_optimizer_that_needs_a_closure_skips_with_a_note(ip):
    report = _digits(ip, HEALTHY.replace("torch.optim.Adam(model.parameters(), lr=1e-3)",
                                         "torch.optim.LBFGS(model.parameters(), lr=0.5)"),
                     body="""
for xb, yb in loader:
    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        return loss
    opt.step(closure)
""")
    pf = report.run["preflight"]
    assert "LBFGS computes the loss inside its step" in pf["skipped"]["all"], pf
    assert any("closure" in n for n in report.notes) and not _ours(report)


def test_a_tiny_budget_skips_with_a_note_and_a_bad_budget_is_a_usage_error(ip):
    report = _digits(ip, HEALTHY, flags="--quiet --preflight --preflight-budget 0.0001")
    assert report.run["preflight"]["skipped"], report.run["preflight"]
    assert any("budget" in n for n in report.notes)
    for flags in ("--preflight --preflight-budget soon", "--preflight-budget 5",
                  "--preflight --preflight-budget -1"):
        with pytest.raises(UsageError):
            ip.run_cell_magic("diagnose", flags, "pass")


def test_api_takes_preflight(ip):
    run_cell(ip, DIGITS + HEALTHY + "import nbdebug")
    result = run_cell(ip, "with nbdebug.diagnose(quiet=True, preflight=True, "
                          "preflight_budget=60):\n" + "\n".join(
                              "    " + line for line in LOOP.strip("\n").splitlines()))
    assert result.error_in_exec is None
    import nbdebug
    assert nbdebug.last_report().run["preflight"]["ran"]


# -- invariants -----------------------------------------------------------------------
def _state(ip, name: str, flags: str | None):
    run_cell(ip, SETUP[name])
    if flags is None:
        result = run_cell(ip, TRAIN)
        report = None
    else:
        result, report = diagnose_cell(ip, TRAIN, flags=flags)
        assert not report.errors, report.errors
    assert result.error_in_exec is None
    ns = ip.user_ns
    grads = {n: p.grad.clone() for n, p in ns["model"].named_parameters()}
    return ({k: v.clone() for k, v in ns["model"].state_dict().items()}, ns["losses"],
            ns["order"], ns["state"], report, grads)


@pytest.mark.parametrize("name", SETUP)
def test_preflight_never_changes_the_training(ip, name):
    a = _state(ip, name, None)
    b = _state(ip, name, "--quiet --every 1 --preflight --preflight-budget 60")
    assert b[4].run["preflight"]["ran"], b[4].run["preflight"]     # it did run
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), k                    # parameters, BN buffers
    assert len(a[1]) == len(b[1]) == 16
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))      # losses
    assert all(torch.equal(x, y) for x, y in zip(a[2], b[2]))      # same batches
    assert torch.equal(a[3][0], b[3][0])                           # torch RNG
    assert (a[3][1] == b[3][1]).all() and a[3][2] == b[3][2]       # numpy, random
    # nbdebug's own counters saw only the user's calls; nothing is left behind
    steps = b[4].run["steps"]
    assert steps == 16 and b[4].run["backward_calls"] == 16
    assert _nbdebug_leftovers() == []
    model = ip.user_ns["model"]
    assert not model._forward_hooks
    assert all(torch.equal(a[5][n], b[5][n]) for n in a[5])       # the last gradients


# -- the healthy corpus ---------------------------------------------------------------
TESTS = pathlib.Path(__file__).parent
HEALTHY_CASES = sorted(str(p.relative_to(TESTS))[:-3] for folder in ("cases", "realworld")
                       for p in (TESTS / folder).glob("*.py") if parse_case(p)["healthy"])
#: healthy programs where no experiment applies (said in a note): GANs and models trained
#: together, updates by hand (no optimizer to copy), LBFGS's closure, dict batches given
#: as keywords, sequence-first inputs and targets flattened over time steps
NOTHING_APPLIES = {"cases/audit_healthy_gan_bce", "realworld/gan_gaussian_mixture",
                   "realworld/pt_examples_dcgan", "realworld/pt_tutorials_seq2seq",
                   "realworld/makemore_bigram", "realworld/makemore_mlp",
                   "realworld/pt_examples_regression",
                   "realworld/pt_examples_word_language_model",
                   "realworld/pt_examples_time_sequence_prediction",
                   "realworld/hf_style_dict_batches", "realworld/d2l_rnn_concise",
                   "realworld/nanogpt_char"}


@pytest.mark.parametrize("name", HEALTHY_CASES)
def test_healthy_corpus_stays_silent_with_preflight(ip, name):
    case = parse_case(TESTS / f"{name}.py")
    if case["setup"].strip():
        assert run_cell(ip, case["setup"]).error_in_exec is None
    result, report = diagnose_cell(ip, case["body"], flags=f"{FLAGS} {case['flags']}")
    assert result.error_in_exec is None and not report.errors, report.errors
    pf = report.run["preflight"]
    assert bool(pf["ran"]) != (name in NOTHING_APPLIES), pf
    if not pf["ran"]:
        assert any(n.startswith("pre-flight:") for n in report.notes), report.notes
    loud = [(f.check, f.severity, f.message) for f in report.findings
            if f.severity in ("problem", "warning")]
    assert not loud, loud


# -- the script runner ------------------------------------------------------------------
def test_cli_runs_preflight_and_checks_its_flags(tmp_path):
    from test_cli import SCRIPT, load, nbdebug
    out = tmp_path / "report.json"
    res = nbdebug("--preflight", "--preflight-budget", "60", "--save", str(out), str(SCRIPT),
                  "--epochs", "1")
    assert res.returncode == 0, res.stderr
    report = load(out)
    assert report["run"]["preflight"]["step"] == 0 and report["run"]["preflight"]["ran"]
    assert "preflight-labels" in report["run"]["checks"]
    bad = nbdebug("--preflight-budget", "5", str(SCRIPT))
    assert bad.returncode == 2 and "add --preflight" in bad.stderr


# -- fault isolation and the verdicts on hand-made results ----------------------------------
def test_an_experiment_that_fails_is_an_internal_error_and_the_others_run(ip, monkeypatch):
    from nbdebug.preflight import runner

    def boom(ctx):
        raise RuntimeError("experiment exploded")
    monkeypatch.setattr(runner, "EXPERIMENTS", [("boom", boom), *runner.EXPERIMENTS])
    run_cell(ip, DIGITS + HEALTHY)
    result, report = diagnose_cell(ip, LOOP, flags=FLAGS)
    assert result.error_in_exec is None and len(ip.user_ns["loader"]) == 8
    assert report.run["steps"] == 16
    assert "experiment exploded" in report.errors[0]["error"]
    assert report.run["preflight"]["ran"] == ["init_loss", "overfit", "inputs", "lr_range",
                                              "labels"]
    assert "boom" in report.run["preflight"]["skipped"]


def _obs(**results):
    from nbdebug.observations import Observations
    obs = Observations()
    obs.preflight = {"ran": list(results), "skipped": {}, "step": 0, **results}
    return obs


def test_loss_at_init_leaves_wide_inputs_to_point_5():
    from nbdebug.checks.preflight import init_loss
    res = {"loss": 40.0, "expected": 2.3, "expected_is": "ln 10", "loss_fn": "cross_entropy",
           "layers": [{"name": "m.0", "type": "Linear", "in_std": 60.0, "out_std": 30.0,
                       "gain": 0.5}]}
    assert init_loss(_obs(init_loss=res)) == []            # the layers are at scale
    res["layers"][0]["in_std"] = 1.0
    res["layers"].append({"name": "m.2", "type": "Linear", "in_std": 0.5, "out_std": 40.0,
                          "gain": 80.0})
    (f,) = init_loss(_obs(init_loss=res))
    assert f.where == "m.2 (Linear)" and "80" in f.message


def test_lr_verdicts_rest_on_the_users_own_run():
    from nbdebug.checks.preflight import labels, lr_too_high
    run = {"lr": 1.0, "steps": 30, "init": 2.3, "final": 0.1, "max": 2.3, "held_init": 2.3,
           "held_max": 3.0, "finite": True, "complete": True}
    res = {"lr": 1.0, "optimizer": "SGD", "diverged_at": 0.5, "best_at": 0.05,
           "suggested": 0.005, "suggested_range": [0.001, 0.015], "at_user_lr": run}
    assert lr_too_high(_obs(lr_range=res)) == []            # the copy did not blow up
    run["held_max"] = 30.0
    (f,) = lr_too_high(_obs(lr_range=res))
    assert f.severity == "problem" and "0.005" in f.fix
    res["diverged_at"] = 2.0                                 # not past the divergence point
    assert lr_too_high(_obs(lr_range=res)) == []
    lab = {"samples": 64, "steps": 60, "real_gain": 0.0, "permuted_gain": 0.0,
           "held_init": 2.3, "real_train_init": 2.3, "real_train_final": 2.0}
    assert labels(_obs(labels=lab)) == "not_checked"         # the copies did not learn
    lab["real_train_final"] = 0.2
    assert labels(_obs(labels=lab))[0].point == 10
