"""Zero-config capture: whatever the names, batch shapes, model outputs and loop style."""

from __future__ import annotations

import contextlib
import gc

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import nbdebug


def _data(n=96, f=5, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, f, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return X, y


def test_train_val_test_loaders_and_roles():
    torch.manual_seed(0)
    X, y = _data()
    tr = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    va = DataLoader(TensorDataset(X[:32], y[:32]), batch_size=16)
    te = DataLoader(TensorDataset(X[32:64], y[32:64]), batch_size=16)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters())
    with nbdebug.diagnose(quiet=True):
        for _ in range(2):
            model.train()
            for xb, yb in tr:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(); loss.backward(); opt.step()
            model.eval()
            with torch.no_grad():
                for xb, yb in va:
                    model(xb)
        with torch.no_grad():
            for xb, yb in te:
                model(xb)
    r = nbdebug.last_report()
    roles = {ld["name"]: ld["role"] for ld in r.run["loaders"]}
    assert roles == {"tr": "train", "va": "eval", "te": "eval"}
    assert r.run["steps"] == 12 and r.run["epochs"] == 2
    ev = r.timelines["eval/va"]
    assert len(ev["values"]) == 2 and 0.0 <= ev["values"][0]["acc"] <= 1.0
    assert ev["values"][0]["n"] == 32


class DictData(Dataset):
    def __init__(self):
        self.X, self.y = _data(64)

    def __len__(self):
        return 64

    def __getitem__(self, i):
        return {"features": self.X[i], "label": self.y[i]}


class TupleOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(5, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.body(x))
        return self.head(h), h


class DictOut(TupleOut):
    def forward(self, x):
        logits, h = super().forward(x)
        return {"logits": logits, "hidden": h}


def test_dict_batches_and_tuple_outputs():
    torch.manual_seed(0)
    dl = DataLoader(DictData(), batch_size=8, shuffle=True)
    m = TupleOut()
    o = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    with nbdebug.diagnose(quiet=True, every=1):
        for batch in dl:
            logits, _ = m(batch["features"])
            loss = nn.CrossEntropyLoss()(logits, batch["label"])
            o.zero_grad(); loss.backward(); o.step()
    r = nbdebug.last_report()
    assert r.run["steps"] == 8 and r.run["loaders"][0]["role"] == "train"
    assert r.run["losses"] == ["cross_entropy"]
    assert "train_acc" in r.timelines and "act/m.head" in r.timelines
    assert r.status(13) == "ok"


def test_handmade_list_batches_dict_output_grad_accumulation():
    torch.manual_seed(0)
    X, y = _data()
    batches = [[X[i:i + 8], y[i:i + 8]] for i in range(0, 96, 8)]
    clf = DictOut()
    adam = torch.optim.Adam(clf.parameters())
    with nbdebug.diagnose(quiet=True):
        for k, (xb, yb) in enumerate(batches):
            out = clf(xb)
            (nn.functional.cross_entropy(out["logits"], yb) / 3).backward()
            if k % 3 == 2:
                adam.step(); adam.zero_grad()
    r = nbdebug.last_report()
    assert r.run["backward_calls"] == 12 and r.run["steps"] == 4
    assert r.run["loaders"] == [] and r.run["models"][0]["name"] == "clf"


def test_two_optimizers_gan_style():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5))
    D = nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.randn(64, 5)
    with nbdebug.diagnose(quiet=True):
        for i in range(0, 64, 16):
            z = torch.randn(16, 4)
            fake = G(z)
            d_loss = bce(D(real[i:i + 16]), torch.ones(16, 1)) + bce(D(fake.detach()),
                                                                     torch.zeros(16, 1))
            opt_d.zero_grad(); d_loss.backward(); opt_d.step()
            g_loss = bce(D(fake), torch.ones(16, 1))
            opt_g.zero_grad(); g_loss.backward(); opt_g.step()
    r = nbdebug.last_report()
    assert {m["name"] for m in r.run["models"]} == {"G", "D"}
    assert {o["name"]: o["steps"] for o in r.run["optimizers"]} == {"opt_d": 4, "opt_g": 4}
    assert r.run["steps"] == 4 and r.run["backward_calls"] == 8
    assert r.status(8) == "ok" and not r.problems and not r.warnings


def test_manual_update_without_optimizer_counts_backward_steps():
    torch.manual_seed(0)
    X, y = _data()
    w = nn.Linear(5, 3)
    with nbdebug.diagnose(quiet=True):
        for i in range(0, 96, 16):
            loss = nn.functional.cross_entropy(w(X[i:i + 16]), y[i:i + 16])
            w.zero_grad()
            loss.backward()
            with torch.no_grad():
                for p in w.parameters():
                    p -= 0.1 * p.grad
    r = nbdebug.last_report()
    assert r.run["steps"] == 6 and r.run["optimizers"] == []
    assert len(r.timelines["grad_norm"]["values"]) == 6


def test_functional_autograd_backward_and_nonscalar_loss():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    with nbdebug.diagnose(quiet=True):
        for _ in range(3):
            out = net(torch.randn(4, 3))
            opt.zero_grad()
            torch.autograd.backward(out.pow(2).mean())
            opt.step()
        out = net(torch.randn(4, 3)).pow(2)
        opt.zero_grad(); out.backward(torch.ones_like(out)); opt.step()
    r = nbdebug.last_report()
    assert r.run["backward_calls"] == 4 and r.run["steps"] == 4
    assert len(r.timelines["loss"]["values"]) == 4


def test_odd_tensors_are_skipped_and_noted_never_disturb():
    torch.manual_seed(0)
    emb = nn.Embedding(20, 4, sparse=True)
    head = nn.Linear(4, 2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.head = emb, head

        def forward(self, idx):
            return self.head(self.emb(idx).mean(1)).to(torch.complex64).real

    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    ids = torch.randint(0, 20, (32, 6))
    y = torch.randint(0, 2, (32,))
    with nbdebug.diagnose(quiet=True, every=1):
        for i in range(0, 32, 8):
            loss = nn.functional.cross_entropy(net(ids[i:i + 8]), y[i:i + 8])
            opt.zero_grad(); loss.backward(); opt.step()
    r = nbdebug.last_report()
    assert r.errors == [] and r.run["steps"] == 4
    assert r.status(13) == "ok"
    assert "gradient norms skipped for sparse gradients" in r.notes


def test_bfloat16_model_and_non_tensor_batch_items():
    torch.manual_seed(0)
    texts = [f"sample {i}" for i in range(32)]
    X, y = _data(32)

    class Mixed(Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            return texts[i], X[i].to(torch.bfloat16), y[i]

    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)).to(torch.bfloat16)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    with nbdebug.diagnose(quiet=True, every=1):
        for names, xb, yb in DataLoader(Mixed(), batch_size=8, shuffle=True):
            loss = nn.functional.cross_entropy(net(xb).float(), yb)
            opt.zero_grad(); loss.backward(); opt.step()
    r = nbdebug.last_report()
    assert r.errors == [] and r.run["steps"] == 4 and r.status(13) == "ok"
    assert next(iter(net.parameters())).dtype == torch.bfloat16


def test_custom_loss_seen_through_backward():
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    opt = torch.optim.Adam(net.parameters())
    with nbdebug.diagnose(quiet=True):
        for _ in range(3):
            x = torch.randn(8, 4)
            loss = ((net(x) - x.sum(1, keepdim=True)) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
    r = nbdebug.last_report()
    assert r.run["losses"] == [] and r.run["loss_graph"][0] == "MeanBackward0"


def test_eval_passes_are_not_training_steps():
    torch.manual_seed(0)
    X, y = _data()
    net = nn.Sequential(nn.Linear(5, 3))
    with nbdebug.diagnose(quiet=True):
        with torch.no_grad():
            net(X)
        net.eval()
        net(X)
    r = nbdebug.last_report()
    assert r.run["steps"] == 0 and r.run["backward_calls"] == 0
    assert r.run["models"][0]["name"] == "net"


def test_submodule_called_alone_belongs_to_its_model():
    torch.manual_seed(0)

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(6, 2)
            self.dec = nn.Linear(2, 6)

        def forward(self, x):
            return self.dec(self.enc(x))

    ae = AE()
    opt = torch.optim.Adam(ae.parameters())
    with nbdebug.diagnose(quiet=True):
        for _ in range(3):
            x = torch.randn(8, 6)
            loss = nn.functional.mse_loss(ae(x), x)
            opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            ae.enc(torch.randn(4, 6))
    r = nbdebug.last_report()
    assert [m["name"] for m in r.run["models"]] == ["ae"]


def test_pending_values_are_bounded_without_steps():
    from nbdebug.stats import Pending
    seen = []
    p = Pending(limit=10)
    for i in range(25):
        p.put(i, torch.tensor(float(i)), lambda s, a: seen.append(float(a)))
    assert len(p) == 5 and seen == [float(i) for i in range(20)]


def _sampling_run(steps: int, **kw):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    X, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
    with nbdebug.diagnose(quiet=True, **kw) as session:
        for i in range(steps):
            b = slice((i % 8) * 8, (i % 8 + 1) * 8)
            loss = nn.functional.cross_entropy(net(X[b]), y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return session


def test_an_explicit_every_is_kept_and_the_default_keeps_samples_over_the_run():
    fixed = _sampling_run(60, every=7)
    assert fixed.report.run["sampling"] == {"every": 7, "adaptive": False, "interval": 7,
                                            "light_interval": 7, "light_samples": 0}
    assert fixed.report.timelines["update_ratio"]["steps"] == list(range(0, 60, 7))
    auto = _sampling_run(300)
    sampling = auto.report.run["sampling"]
    assert sampling["adaptive"] and sampling["every"] == 10
    # full samples within the budget; light ones (the accuracy, the activations' shares)
    # between them keep about five each time the run doubles
    full = auto.report.timelines["output"]["steps"]      # (the model output's summary)
    assert sampling["interval"] % 10 == 0 and len(full) >= 3
    assert sampling["light_interval"] % 10 == 0 and sampling["light_interval"] <= 60
    assert len(full) + sampling["light_samples"] >= 14


def test_the_sampling_interval_follows_the_measured_cost_of_sampled_steps():
    """Unit test of the rule: full samples' extra time <= 1% of a step, interval a
    multiple of --every, at most the run so far and 500; light samples at most steps/5
    apart; the step before each sampled one counts in its cost."""
    from nbdebug.capture.sampling import Sampling
    policy = Sampling(every=10, adaptive=True)

    def interval(step, lean, sampled):
        policy._lean_seconds, policy._lean_steps = lean * 100, 100
        policy._sampled_seconds, policy._sampled_steps = sampled * 10, 10
        policy._adapt(step)
        return policy.interval
    assert interval(5000, lean=1e-3, sampled=1.05e-3) == 10     # 5% of a step: cheap
    assert interval(5000, lean=1e-3, sampled=1.25e-3) == 30     # 25%: every 30th step
    assert interval(5000, lean=1e-3, sampled=3e-3) == 200       # 200%: every 200th
    assert interval(5000, lean=1e-3, sampled=1e-2) == 500       # capped at 500
    # a full sample each time the run doubles at least; light ones between the budget's
    # keep five each time it doubles
    assert interval(150, lean=1e-3, sampled=3e-3) == 150 and policy.light == 30
    assert interval(400, lean=1e-3, sampled=3e-3) == 200 and policy.light == 80
    assert interval(5000, lean=1e-3, sampled=1.05e-3) == 10 and policy.light == 10
    # the step before each sampled one is hooked for it: its extra counts as the sample's
    policy._pre_seconds, policy._pre_steps = 2e-3 * 10, 10
    assert interval(5000, lean=1e-3, sampled=3e-3) == 300       # 200% + 100%
    # ... and when it ran on the span until its update, nbdebug's own time on it
    policy._pre_seconds, policy._pre_steps = 0.0, 0
    policy._pre_own_seconds, policy._pre_own_steps = 1e-3 * 10, 10
    assert interval(5000, lean=1e-3, sampled=3e-3) == 300
    policy._pre_seconds, policy._pre_steps = 2e-3 * 10, 10      # both kinds: their mean
    assert interval(5000, lean=1e-3, sampled=3e-3) == 300


def test_the_flush_window_follows_the_measured_cost_of_flushes():
    """Unit test of the rule: a flush every 50 steps at first; the window doubles (up to
    400) while a flush costs more than 0.5% of the steps between two; a multi-rank run
    keeps 50; a buffer holding 500 values is flushed whatever the window."""
    from nbdebug.capture.sampling import Flushes
    flushes = Flushes()
    assert flushes.due(50) and not flushes.due(60) and flushes.after(60) == 100
    flushes.flushed(0.5e-3, 50, 50 * 1e-3)           # 0.5 ms against 1 ms steps: 1%
    assert flushes.window == 100 and not flushes.due(150) and flushes.after(120) == 200
    flushes.flushed(0.5e-3, 200, 200 * 1e-4)         # cheaper steps: the mean, 10x
    assert flushes.window == 400
    slow = Flushes()
    slow.flushed(0.5e-3, 50, 50 * 0.1)               # 100 ms steps: a flush is nothing
    assert slow.window == 50
    assert flushes.due(130, held=500) and not flushes.due(130, held=499)
    flushes.fixed = True
    assert flushes.due(50) and flushes.after(60) == 100


def test_without_a_live_view_the_first_flush_waits_the_longest_window():
    """Nothing reads the values before the report: a quiet run's first flush comes at
    400 steps (the report's loss curve still has every step), a live view's at 50."""
    from nbdebug.options import Settings
    from nbdebug.session import Session
    torch.manual_seed(0)
    X, y = torch.randn(256, 8), torch.randint(0, 2, (256,))
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=1e-2)
    seen: dict[str, list[int]] = {}
    for name in ("quiet", "live"):
        session = Session(Settings(quiet=True), {"net": net, "opt": opt})
        if name == "live":
            session.listeners.append(lambda obs: seen[name].append(obs.steps))
        seen[name] = []
        with session:
            for _ in range(120):
                opt.zero_grad()
                nn.functional.cross_entropy(net(X[:16]), y[:16]).backward()
                opt.step()
            seen[name].append(session.capture.flushes._count)
        assert session.report.timelines["loss"]["steps"] == list(range(120))
    assert seen["quiet"] == [0]                 # no flush before the end
    assert seen["live"][:1] == [50] and seen["live"][-1] >= 1


class _FixedBatches(torch.utils.data.Sampler):
    """The same batches in the same order every epoch: a custom sampler nbdebug cannot
    read the order from, so the order fingerprints must tell."""

    def __init__(self, n, size):
        self.batches = [list(range(i, min(i + size, n))) for i in range(0, n, size)]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def _fixed_order_run(n, size, epochs):
    torch.manual_seed(0)
    X = torch.randn(n, 5)
    y = torch.arange(n) * 3 // n                 # sorted: each batch holds one label
    loader = DataLoader(TensorDataset(X, y), batch_sampler=_FixedBatches(n, size))
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with nbdebug.diagnose(quiet=True) as session:
        for _ in range(epochs):
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(); loss.backward(); opt.step()
    return session.capture.obs.input_fingerprints, nbdebug.last_report()


def test_order_fingerprints_stop_after_two_epochs_of_a_loader_of_known_length():
    """Two epochs (and one batch) show a repeated order; later batches cost nothing."""
    fps, report = _fixed_order_run(n=120, size=12, epochs=5)
    assert len(fps) == 2 * 10 + 2
    assert report.status(6) == "problem"
    assert report.finding("shuffle").evidence["batches_per_epoch"] == 10
    # an epoch longer than half the fingerprint budget could never show a repeat: none taken
    from nbdebug.capture.audits import FINGERPRINT_BATCHES
    fps, report = _fixed_order_run(n=2 * (FINGERPRINT_BATCHES // 2 + 1), size=2, epochs=1)
    assert fps == [] and not report.errors


def test_a_point_of_the_training_accuracy_covers_32_samples_on_small_batches():
    """Batches of 4: a sample's accuracy alone is 0, 0.25, 0.5, 0.75 or 1; each point takes
    the next steps' batches until it covers 32 samples (eight batches), on a steady span
    and off it."""
    torch.manual_seed(0)
    X, y = _data(n=160)
    loader = DataLoader(TensorDataset(X, y), batch_size=4, shuffle=True)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with nbdebug.diagnose(quiet=True):
        for _ in range(8):
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(); loss.backward(); opt.step()
    report = nbdebug.last_report()
    acc = report.timelines["train_acc"]
    assert not report.errors and len(acc["steps"]) >= 8
    # the values are counts of 32 (or more, up to the last point's), not of 4
    assert all(abs(v * 32 - round(v * 32)) < 1e-6 for v in acc["values"][:-1]), acc
    assert any(abs(v * 4 - round(v * 4)) > 1e-6 for v in acc["values"]), acc
    assert report.run["sampling"]["light_samples"] >= 7 * len(acc["steps"]) // 2


def _sgd_run(activation, hidden=8, sgd=torch.optim.SGD):
    """A small classifier's loader, model (``activation`` in the middle) and SGD, seeded."""
    torch.manual_seed(0)
    X, y = _data(n=320)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    model = nn.Sequential(nn.Linear(5, hidden), activation, nn.Linear(hidden, 3))
    return loader, model, sgd(model.parameters(), lr=0.05, momentum=0.9)


def test_a_light_sample_takes_the_updates_statistics_and_leaves_the_optimizer_as_it_was():
    """Light samples on a steady span record the gradient norms and update ratios of their
    step (the stuck loss's causes are read from them in the last third of a run): the
    optimizer's step is wrapped for that step only. The training is the bare one, and the
    scheduler's own wrapper of ``opt.step`` is the same object afterwards."""
    def run(diagnose):
        loader, model, opt = _sgd_run(nn.Tanh())
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=50, gamma=0.5)
        wrapper = vars(opt).get("step")
        ctx = nbdebug.diagnose(quiet=True) if diagnose else contextlib.nullcontext()
        with ctx:
            for _ in range(30):
                for xb, yb in loader:
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    opt.zero_grad(); loss.backward(); opt.step()
                    sched.step()
        assert vars(opt).get("step") is wrapper            # nothing left on the optimizer
        return [p.detach().clone() for p in model.parameters()]
    bare = run(False)
    watched = run(True)
    assert all(torch.equal(a, b) for a, b in zip(bare, watched))
    report = nbdebug.last_report()
    assert not report.errors and report.run["steps"] == 300
    full = set(report.timelines["output"]["steps"])
    light = set(report.timelines["train_acc"]["steps"]) - full
    ratios = set(report.timelines["update_ratio"]["steps"])
    grads = set(report.timelines["grad_norm"]["steps"])
    # every light sample, the span's last one before it stops included
    assert {s for s in light if s >= 200}, sorted(light)
    assert light <= ratios and light <= grads, (sorted(light), sorted(ratios))
    row = report.timelines["update_ratio"]["values"][-1]
    assert all(0 < v < 1 for v in row), row


def test_an_update_skipped_at_a_light_sample_is_not_measured_at_a_later_step():
    """GradScaler skips ``opt.step`` when the scaled gradients overflow. When that happens
    at a light sample on a steady span, the wrapper that sees the update stays on the
    optimizer until its next call: that call, a later step's, must only step (no update
    ratio or gradient norm for a step nobody sampled), and the training is the bare one
    with the same skips."""
    def run(skipped):
        loader, model, opt = _sgd_run(nn.ReLU())
        diagnose = skipped is None
        skipped = [] if diagnose else skipped
        step, seen = 0, []
        with nbdebug.diagnose(quiet=True) if diagnose else contextlib.nullcontext():
            for _ in range(30):
                for xb, yb in loader:
                    loss = nn.functional.cross_entropy(model(xb), yb)
                    opt.zero_grad(); loss.backward()
                    # (diagnosed: skip the update of each step a light sample watches, as
                    # GradScaler skips one whose gradients overflowed)
                    wrapper = vars(opt).get("step")
                    if diagnose and wrapper is not None and not any(w is wrapper for w in seen):
                        seen.append(wrapper)
                        skipped.append(step)
                    elif step not in skipped:
                        opt.step()
                    step += 1
        assert "step" not in vars(opt)
        return [p.detach().clone() for p in model.parameters()], skipped
    watched, skipped = run(None)
    report = nbdebug.last_report()
    bare, _ = run(skipped)
    assert all(torch.equal(a, b) for a, b in zip(bare, watched))
    assert skipped and not report.errors, report.errors
    sampled = (set(report.timelines["output"]["steps"])
               | set(report.timelines["train_acc"]["steps"]))
    ratios = set(report.timelines["update_ratio"]["steps"])
    assert ratios <= sampled, sorted(ratios - sampled)
    assert not {s + 1 for s in skipped} & ratios - sampled


class _DictData(Dataset):
    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return {"x": self.X[i], "labels": self.y[i]}


def test_labels_popped_from_a_dict_batch_still_give_the_training_accuracy():
    """Hugging Face style: the loop takes the labels out of the batch before the forward.
    The batch's labels are read when the loader gives it, on the steps that need them."""
    torch.manual_seed(0)
    X, y = _data(n=160)
    loader = DataLoader(_DictData(X, y), batch_size=16, shuffle=True)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    with nbdebug.diagnose(quiet=True, every=5):
        for _ in range(3):
            for batch in loader:
                labels = batch.pop("labels")
                loss = nn.functional.cross_entropy(model(batch["x"]), labels)
                opt.zero_grad(); loss.backward(); opt.step()
    report = nbdebug.last_report()
    assert not report.errors
    # (a point of the accuracy covers 32 samples: the sampled batch of 16 and a next one,
    # the next step's, or where a steady span can take it, two or three steps on)
    steps = report.timelines["train_acc"]["steps"]
    assert len(steps) == 6 and all(1 <= s - 5 * i <= 3 for i, s in enumerate(steps)), steps


def test_input_moments_are_those_of_the_first_batches_and_leave_out_one_changed_in_place():
    """The per-feature input moments (point 5) are summed up in runs of batches after the
    steps that drew them: they must be those of the first INPUT_BATCHES batches exactly,
    and a batch the user changed in place afterwards is left out (not counted with its new
    values)."""
    from nbdebug import keys
    from nbdebug.capture.probes.inputs import INPUT_BATCHES

    def run(spoil: bool):
        torch.manual_seed(0)
        X = torch.randn(400, 6) * torch.arange(1, 7) + 10
        y = torch.randint(0, 3, (400,))
        model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        seen = []
        with nbdebug.diagnose(quiet=True) as session:
            for xb, yb in DataLoader(TensorDataset(X, y), batch_size=8):
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(); loss.backward(); opt.step()
                seen.append(xb.clone())
                if spoil and len(seen) == 3:
                    xb.mul_(0)                    # (after its step: the data it trained on)
        return session.capture.obs.extra[keys.INPUTS], seen
    inputs, seen = run(spoil=False)
    (got,) = inputs.values()
    first = torch.cat(seen[:INPUT_BATCHES]).double()
    assert got["batches"] == INPUT_BATCHES
    assert torch.allclose(torch.tensor(got["mean"], dtype=torch.float64), first.mean(0), atol=1e-9)
    assert torch.allclose(torch.tensor(got["std"], dtype=torch.float64), first.std(0, unbiased=False),
                          atol=1e-6)
    assert got["min"] == first.min(0).values.tolist()
    assert got["max"] == first.max(0).values.tolist()
    inputs, seen = run(spoil=True)
    (got,) = inputs.values()
    kept = torch.cat(seen[:2] + seen[3:INPUT_BATCHES + 1])   # (the next batch stands in)
    assert got["batches"] == INPUT_BATCHES and got["min"] == kept.min(0).values.tolist()


def test_a_spans_inputs_give_their_first_tensors_and_bytes_sparse_and_nested_args_too():
    from nbdebug.capture.structure import SpanInputs
    dense, sparse = torch.ones(4, 3), torch.eye(5).to_sparse()
    plain = SpanInputs(7, [(dense,), (sparse,)])
    assert [s for s, _ in plain] == [7, 8]
    assert plain.sizes() == [48, 100]            # a sparse tensor has no nbytes: as dense
    assert [(s, x is t) for (s, x), t in zip(plain.tensors(), (dense, sparse))] == [
        (7, True), (8, True)]
    mixed = SpanInputs(0, [((dense, {"mask": sparse}),), ("no tensor",)])
    assert mixed.sizes() == [148, 0]
    assert [(s, x is dense) for s, x in mixed.tensors()] == [(0, True)]


def test_finite_rows_of_a_flush_are_laid_out_as_the_array_path_lays_them_out():
    """A flush hands ``StepSink.batch`` many short runs of rows; rows without a NaN or an
    Inf take a path of plain lists. It must fill the timelines exactly as the array path
    (which rows with a NaN or an Inf still take) does: the loss, gradient-norm rows under
    names met in any order, update ratios (zero norms included), Python floats."""
    import numpy as np

    from nbdebug import keys
    from nbdebug.capture.steps import StepRows, StepSink
    from nbdebug.observations import Observations
    from nbdebug.stats import Pending

    def array_path(sink, steps, rows):
        for part, at, n in sink.parts:
            block = rows[:, at:at + n]
            finite = np.isfinite(block)
            if part[0] == "loss":
                sink.obs.series(keys.LOSS).extend(steps, block[:, 0].tolist())
            elif part[0] != "guards":
                sink._row(part, steps, block, finite, bool(finite.all()))

    def same(x, y):
        return type(x) is type(y) and (x == y or (x != x and y != y)) if not isinstance(
            x, list) else len(x) == len(y) and all(map(same, x, y))

    rng = np.random.default_rng(0)
    for trial in range(200):
        fast, slow = Observations(), Observations()
        names = [tuple(f"p{i}" for i in rng.permutation(6)[:rng.integers(1, 6)])
                 for _ in range(3)]
        layout = [("loss",), ("guards", ("a", "b"), False),
                  ("row", keys.GRAD_NORM, names[0]), ("ratio", keys.UPDATE_RATIO, names[1]),
                  ("row", keys.GRAD_NORM, names[2])]
        sinks = [StepSink(StepRows(obs, Pending()), layout) for obs in (fast, slow)]
        width = sum(n for _, _, n in sinks[0].parts)
        for k in range(3):
            rows = rng.standard_normal((int(rng.integers(1, 8)), width)) * 10.0 ** k
            rows[rng.random(rows.shape) < 0.2] = 0.0
            steps = list(range(10 * k, 10 * k + len(rows)))
            sinks[0].batch(steps, rows.copy())
            array_path(sinks[1], steps, rows.copy())
        assert fast.timelines.keys() == slow.timelines.keys()
        for key, series in fast.timelines.items():
            other = slow.timelines[key]
            assert series.steps == other.steps and series.columns == other.columns
            assert same(series.values, other.values), (trial, key)


class _FlakySGD(torch.optim.SGD):
    """SGD whose step raises while ``fail`` is set, as an out-of-memory error would."""
    fail = False

    def step(self, closure=None):
        if self.fail:
            raise RuntimeError("out of memory (simulated)")
        return super().step(closure)


def test_a_raising_update_at_a_light_sample_lets_its_copy_of_the_weights_go():
    """An optimizer step can raise (out of memory, say), and a training loop may catch it
    and go on with the next batch. When that happens at a light sample on a steady span,
    the copy of the weights taken for the update's ratio must go with the failed step:
    held until the next sample, it would double the weights' memory meanwhile."""
    loader, model, opt = _sgd_run(nn.ReLU(), hidden=37, sgd=_FlakySGD)   # (a rare shape)
    weight = model[0].weight

    def copies():
        """Tensors shaped like the weight, other than it, its gradient and its momentum
        (the NaN replay keeps a copy of its own)."""
        own = [weight, weight.grad, opt.state.get(weight, {}).get("momentum_buffer")]
        gc.collect()                # (a caught error's frames hold theirs until collected)
        return len([o for o in gc.get_objects() if isinstance(o, torch.Tensor)
                    and o.shape == weight.shape and not any(o is t for t in own)])
    counts, raised = [], 0
    with nbdebug.diagnose(quiet=True):
        for _ in range(20):
            for xb, yb in loader:
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad(); loss.backward()
                opt.fail = "step" in vars(opt)      # (a light sample's wrapper is on)
                before = copies() if opt.fail else 0
                try:
                    opt.step()
                except RuntimeError:                # (the user's error, re-raised)
                    raised += 1                     # (this batch's update is skipped)
                if opt.fail:
                    counts.append((before, copies()))
                opt.fail = False
    assert counts and all(a == b for a, b in counts), counts
    assert raised == len(counts)
    assert not nbdebug.last_report().errors
