"""The dynamics checks on hand-made timelines: each bug fires, noisy healthy curves do not."""

from __future__ import annotations

import math
import random

import pytest

from nbdebug.checks import NOT_CHECKED, REGISTRY
from nbdebug.observations import (
    GroupInfo,
    LoaderInfo,
    LossCall,
    ModelInfo,
    ModuleInfo,
    NanEvent,
    Observations,
    OptimizerInfo,
    ParamInfo,
)
from nbdebug.stats.summary import SUMMARY

LAYERS = ["m.0.weight", "m.0.bias", "m.2.weight", "m.2.bias"]


def make_obs(loss, classes=10, grads=None, ratios=None, lr=1e-3, out_absmax=3.0,
             out_std=1.0, every=1, stale=None, train_acc=None, evals=None,
             eval_inputs=None, modules=None, params=None, **dynamics) -> Observations:
    """Observations with a loss timeline and optional per-layer timelines."""
    obs = Observations(every=every)
    shapes = {"m.0.weight": (32, 16), "m.0.bias": (32,), "m.2.weight": (classes, 32),
              "m.2.bias": (classes,)}
    obs.models.append(ModelInfo(
        name="m", type="Sequential",
        modules=modules or [ModuleInfo("m.0", "Linear"), ModuleInfo("m.1", "ReLU"),
                            ModuleInfo("m.2", "Linear")],
        params=params or [ParamInfo(n, s, std=0.1, mean=0.0, min=-0.2, max=0.2, absmax=0.2)
                          for n, s in shapes.items()]))
    obs.optimizers.append(OptimizerInfo("opt", "Adam", [GroupInfo(0, lr, params=LAYERS)]))
    obs.losses.append(LossCall("cross_entropy", calls=len(loss), input_shape=(32, classes),
                               target_is_index=True))
    s = obs.series("loss")
    for i, v in enumerate(loss):
        s.add(i, float(v))
    obs.steps = obs.backward_calls = len(loss)
    o = obs.series("output")
    o.columns = list(SUMMARY)
    for i in range(0, len(loss), 10):
        o.add(i, [0.0, out_std, -out_absmax, out_absmax, out_absmax, 0.0, 0.0])
    g = obs.series("grad_norm")
    g.columns = list(LAYERS)
    for i in range(len(loss)):
        g.add(i, list(grads[i]) if grads is not None else [1.0, 0.1, 1.0, 0.1])
    u = obs.series("update_ratio")
    u.columns = list(LAYERS)
    for i in range(0, len(loss), 10):
        u.add(i, list(ratios[i]) if ratios is not None else [1e-3] * 4)
    lrs = obs.series("lr/0")
    for i in range(0, len(loss), 10):
        lrs.add(i, [lr])
    if stale is not None:
        st = obs.series("stale_grad")
        for i in range(0, len(loss), 10):
            st.add(i, float(stale(i)))
    if train_acc is not None:
        ta = obs.series("train_acc")
        for i in range(0, len(loss), 10):
            ta.add(i, float(train_acc(i)))
    for name, rounds in (evals or {}).items():
        obs.loaders.append(LoaderInfo(name, role="eval", eval_passes=len(rounds)))
        es = obs.series(f"eval/{name}")
        for r, (acc, loss_r) in enumerate(rounds, 1):
            es.add(r * 100, {"round": r, "acc": acc, "loss": loss_r, "n": 300.0})
    obs.eval_inputs.update(eval_inputs or {})
    obs.dynamics.update(dynamics)
    return obs


def noisy_decay(n=300, start=2.3, end=0.2, noise=0.25, seed=0):
    rnd = random.Random(seed)
    return [(end + (start - end) * math.exp(-4 * i / n)) * (1 + noise * (rnd.random() - 0.5) * 2)
            for i in range(n)]


def run(check_id, obs):
    return REGISTRY[check_id].run(obs)


def loud(out):
    return [f for f in out if f.severity in ("problem", "warning")] if isinstance(out, list) \
        else []


# -- healthy timelines: no check may warn ---------------------------------------------------
HEALTHY = {
    "noisy small batches": lambda: make_obs(noisy_decay(noise=0.6)),
    "high lr with momentum": lambda: make_obs(
        noisy_decay(noise=0.4), ratios=[[2e-2, 2e-2, 3e-2, 3e-2]] * 300, lr=0.1),
    "plateau that resolves": lambda: make_obs(
        [0.693 + 0.002 * math.sin(i) for i in range(150)]
        + noisy_decay(150, 0.69, 0.1, 0.1), classes=2),
    "lr schedule with a spike it recovers from": lambda: make_obs(
        [v * (4.0 if i == 120 else 1.0) for i, v in enumerate(noisy_decay())]),
    "converged full batch": lambda: make_obs(
        [0.05 + 1e-7 * math.exp(-i / 50) for i in range(200)],
        train_acc=lambda i: 1.0),
    "held-out loss flat and noisy": lambda: make_obs(
        noisy_decay(), train_acc=lambda i: 0.9,
        evals={"val": [(0.80, 0.60), (0.84, 0.52), (0.85, 0.50), (0.85, 0.52), (0.86, 0.49),
                       (0.85, 0.51), (0.86, 0.50)]}),
    "val and test alike": lambda: make_obs(
        noisy_decay(), train_acc=lambda i: 0.9,
        evals={"val": [(0.90, 0.3)], "test": [(0.88, 0.35)]},
        eval_inputs={"val": {"features": 2, "mean": [0.0, 1.0], "std": [1.0, 2.0]},
                     "test": {"features": 2, "mean": [0.05, 1.1], "std": [1.0, 2.1]}}),
    "zero_grad called": lambda: make_obs(noisy_decay(), stale=lambda i: 0.0,
                                         zero_grad_calls=300),
    "clipping holds growing norms": lambda: make_obs(
        noisy_decay(), grads=[[1.0 * 1.05 ** min(i, 200), 0.1, 1.0, 0.1] for i in range(300)],
        clip_calls=300, clip_max_norm=1.0),
    "modes switched properly": lambda: make_obs(
        noisy_decay(), modules=[ModuleInfo("m.0", "Linear"), ModuleInfo("m.1", "Dropout",
                                                                        attrs={"p": 0.5})],
        steps_seen=300, eval_passes_in_eval_mode=5),
}


@pytest.mark.parametrize("name", list(HEALTHY))
@pytest.mark.parametrize("check_id", ["huge-logits", "lr-too-large", "exploding-gradients",
                                      "label-mismatch", "over-confidence", "val-test-shift",
                                      "stuck", "zero-grad", "train-eval-mode", "nan-origin"])
def test_healthy_timelines_raise_nothing(name, check_id):
    out = run(check_id, HEALTHY[name]())
    assert not loud(out), [(f.check, f.message) for f in loud(out)]


# -- each bug fires ------------------------------------------------------------------------
def test_huge_logits_first_loss_far_above_ln_c():
    obs = make_obs([900.0] * 50 + [800.0] * 50, out_absmax=3000.0, out_std=600.0)
    (f,) = run("huge-logits", obs)
    assert f.severity == "problem" and f.evidence["first_loss"] == 900.0
    assert "ln(10)" in f.message


def test_huge_logits_collapse_to_zero_names_the_init():
    obs = make_obs([2.0, 1.0, 0.1] + [0.0] * 60, out_absmax=700.0, params=[
        ParamInfo("m.0.weight", (32, 16), std=8.0), ParamInfo("m.2.weight", (10, 32), std=0.1)])
    (f,) = run("huge-logits", obs)
    assert f.evidence["collapsed_at_step"] == 3 and "m.0.weight" in f.message


def test_logits_small_is_fine_even_if_loss_collapses():
    assert run("huge-logits", make_obs([2.0, 0.5] + [0.0] * 60, out_absmax=12.0)) == []


def test_lr_divergence_reports_group_lr_and_ratio():
    loss = noisy_decay(100, 2.3, 1.0, 0.1) + [10 ** (i / 20) for i in range(100)]
    obs = make_obs(loss, ratios=[[0.2, 0.2, 0.3, 0.3]] * 200, lr=1.0)
    (f,) = run("lr-too-large", obs)
    assert f.severity == "problem" and "lr 1" in f.message and f.where == "opt group 0"


def test_lr_oscillation_without_progress_needs_large_updates():
    rnd = random.Random(1)
    loss = [2.3 * (1 + 0.8 * (rnd.random() - 0.5)) for _ in range(200)]
    assert run("lr-too-large", make_obs(loss, ratios=[[1e-3] * 4] * 200)) == []
    (f,) = run("lr-too-large", make_obs(loss, ratios=[[0.1] * 4] * 200))
    assert "oscillates" in f.message


def test_lr_scheduler_raise_is_named():
    loss = noisy_decay(100, 2.3, 1.0, 0.1) + [50.0 * (1 + (i % 3)) for i in range(100)]
    obs = make_obs(loss, ratios=[[0.1] * 4] * 200)
    lr = obs.timelines["lr/0"]
    lr.values = [[0.01] if s < 100 else [1.0] for s in lr.steps]
    (f,) = run("lr-too-large", obs)
    assert "raised the lr from 0.01 to 1" in f.message


def test_exploding_gradients_names_layer_step_and_clip_value():
    grads = [[1.0, 0.1, 1.0, 0.1]] * 50 + [[1.0, 0.1, 10 ** (i / 5), 0.1] for i in range(30)]
    loss = noisy_decay(50, 2.3, 1.0, 0.1) + [1.0 * 3 ** (i / 3) for i in range(30)]
    (f,) = run("exploding-gradients", make_obs(loss, grads=grads))
    assert f.severity == "problem" and f.where == "m.2.weight" and f.step == 79
    # the clip value comes from the norms before the explosion (all 1.42) and is never
    # below their median: the healthy steps pass it untouched
    assert f.evidence["suggested_max_norm"] == f.evidence["fix"]["max_norm"] == 1.5
    assert f.evidence["suggested_max_norm"] >= f.evidence["healthy_median_norm"]
    assert "max_norm=1.5" in f.fix and "LSTM" not in f.fix     # no RNN in this model


def test_clip_value_is_never_below_the_median_of_healthy_norms():
    from nbdebug.checks.gradients import clip_value
    for healthy in ([0.0008] * 3 + [5.0] * 7, [1.0, 2.0, 3.0], [0.123456] * 10, [7.77]):
        assert clip_value(healthy) >= sorted(healthy)[len(healthy) // 2]


def test_exploding_gradients_to_nan_right_after_the_first_step():
    grads = [[300.0, 1.0, 50.0, 1.0], [6e5, 1.0, 1e5, 1.0]] + [[math.nan] * 4] * 20
    loss = [2.2, 9000.0] + [math.nan] * 20
    obs = make_obs(loss, grads=grads)
    obs.nan = NanEvent(2, "loss", None)
    (f,) = run("exploding-gradients", obs)
    assert "Inf/NaN at step 2" in f.message


def test_zero_grad_never_called():
    obs = make_obs(noisy_decay(), stale=lambda i: 0.0 if i == 0 else 1.0 + i / 10)
    (f,) = run("zero-grad", obs)
    assert f.severity == "problem" and f.evidence["zero_grad_calls"] == 0
    # the same root cause is not also reported as a too large learning rate
    assert run("lr-too-large", obs) == []


def test_label_mismatch_versus_overfitting():
    mismatch = make_obs(noisy_decay(end=0.01), train_acc=lambda i: 1.0,
                        evals={"val": [(0.10, 3.0), (0.09, 4.0), (0.11, 5.0), (0.10, 6.0)]})
    (f,) = run("label-mismatch", mismatch)
    assert "Ordinary overfitting" in f.message
    assert run("over-confidence", mismatch) == []          # one root cause, one finding
    overfit = make_obs(noisy_decay(end=0.01), train_acc=lambda i: 1.0,
                       evals={"val": [(0.60, 1.2), (0.80, 0.6), (0.83, 0.7), (0.82, 0.9)]})
    assert run("label-mismatch", overfit) == []


def test_over_confidence_rising_held_out_loss():
    rounds = [(0.70, 0.9), (0.80, 0.6), (0.84, 0.5), (0.85, 0.55), (0.85, 0.6), (0.86, 0.66),
              (0.86, 0.72)]
    (f,) = run("over-confidence", make_obs(noisy_decay(), evals={"val": rounds}))
    assert f.severity == "warning" and f.evidence["min_loss_round"] == 3
    falling_acc = [(a - 0.02 * i, loss_r) for i, (a, loss_r) in enumerate(rounds)]
    assert run("over-confidence", make_obs(noisy_decay(), evals={"val": falling_acc})) == []
    assert run("over-confidence", make_obs(noisy_decay(), evals={"val": rounds[:3]})) \
        == NOT_CHECKED


def test_val_test_shift_needs_gap_and_shifted_inputs():
    inputs = {"val": {"features": 2, "mean": [0.0, 1.0], "std": [1.0, 1.0]},
              "test": {"features": 2, "mean": [1.5, 1.0], "std": [1.0, 1.0]}}
    gap = {"val": [(0.92, 0.3)], "test": [(0.55, 1.5)]}
    (f,) = run("val-test-shift", make_obs(noisy_decay(), evals=gap, eval_inputs=inputs))
    assert f.where == "test" and f.evidence["mean_abs_smd"] == 0.75
    same = {k: dict(v, mean=[0.0, 1.0]) for k, v in inputs.items()}
    assert run("val-test-shift", make_obs(noisy_decay(), evals=gap, eval_inputs=same)) == []


def test_train_eval_mode_both_ways():
    bn = [ModuleInfo("m.0", "Conv2d"), ModuleInfo("m.1", "BatchNorm2d")]
    (f,) = run("train-eval-mode", make_obs(noisy_decay(), modules=bn, steps_seen=300,
                                           steps_in_eval_mode=200, first_eval_mode_step=100))
    assert f.severity == "problem" and f.step == 100
    drop = [ModuleInfo("m.0", "Linear"), ModuleInfo("m.1", "Dropout", attrs={"p": 0.5})]
    (f,) = run("train-eval-mode", make_obs(noisy_decay(), modules=drop, steps_seen=300,
                                           eval_passes_in_train_mode=4,
                                           train_mode_loaders=["val"]))
    assert f.severity == "warning" and f.where == "val"
    plain = [ModuleInfo("m.0", "Linear")]
    assert run("train-eval-mode", make_obs(noisy_decay(), modules=plain)) == "not_applicable"


def _stuck(obs):
    (f,) = run("stuck", obs)
    assert f.check == "stuck" and f.severity == "problem"
    return f


def test_stuck_dead_relus_after_an_lr_jump():
    loss = noisy_decay(60, 2.3, 1.0, 0.05) + [2.35 + 0.1 * math.sin(i) for i in range(120)]
    obs = make_obs(loss)
    d = obs.series("dead_units")
    d.columns = ["m.1"]
    d.add(50, [0.0])
    d.add(150, [1.0])
    f = _stuck(obs)
    assert "dead ReLUs" in f.message and f.evidence["since_step"] == 60


def test_stuck_causes_each_named():
    flat = [0.69 + 0.03 * math.sin(i) for i in range(120)]
    obs = make_obs(flat, classes=2, ratios=[[1e-7 * 4] * 4] * 120)
    assert "far too small" in _stuck(obs).message
    obs = make_obs(flat, classes=2)
    obs.models[0].params[0].in_optimizer = obs.models[0].params[2].in_optimizer = False
    assert "optimizer does not hold" in _stuck(obs).message
    obs = make_obs(flat, classes=2)
    del obs.timelines["grad_norm"]
    obs.extra["loss_graph"] = []
    assert "no gradient path" in _stuck(obs).message
    obs = make_obs(flat, classes=2)
    sat = obs.series("saturated/m.1")
    for i in range(0, 120, 10):
        sat.add(i, 0.99)
    assert "saturated" in _stuck(obs).message
    deep = [ParamInfo(f"m.{i}.weight", (16, 16)) for i in range(3)]
    obs = make_obs(flat, classes=2, params=deep)
    g = obs.timelines["grad_norm"]
    g.columns = [p.name for p in deep]
    g.values = [[1e-9, 1e-6, 1e-3]] * len(g.steps)
    assert "vanishing gradients: m.0.weight" in _stuck(obs).message


def test_stuck_silent_without_a_cause_while_the_loss_still_moves():
    loss = noisy_decay(100, 2.3, 1.0, 0.05) + [1.0 + 0.05 * math.sin(i) for i in range(100)]
    assert run("stuck", make_obs(loss)) == []


def test_zero_grad_defers_to_stuck_when_the_optimizer_holds_other_parameters():
    obs = make_obs([1.0 + 0.05 * math.sin(i) for i in range(120)], classes=3,
                   stale=lambda i: float(i))
    for p in obs.models[0].params:
        p.in_optimizer = False
    assert run("zero-grad", obs) == []
    assert "optimizer does not hold" in _stuck(obs).message


def _regression_obs(train_losses, rounds):
    from nbdebug.observations import LoaderInfo, Observations
    obs = Observations(steps=len(train_losses), backward_calls=len(train_losses))
    obs.loaders = [LoaderInfo("train_dl", role="train"), LoaderInfo("val_dl", role="eval")]
    for i, v in enumerate(train_losses):
        obs.series("loss").add(i, v)
    for k, (mse, var) in enumerate(rounds):
        obs.series("heldout_mse/val_dl").add(k * 10, {"round": k, "mse": mse, "baseline": var,
                                                      "n": 32.0})
    return obs


def test_regression_targets_memorised_but_nothing_carries_over():
    from nbdebug.checks import REGISTRY
    memorised = [1.0 * 0.9 ** i for i in range(100)]          # falls to ~3e-5 of its start
    [f] = REGISTRY["label-mismatch"].run(_regression_obs(memorised, [(1.3, 1.0), (1.4, 1.0)]))
    assert f.point == 10 and f.severity == "problem" and f.where == "val_dl"


def test_regression_that_generalises_or_has_not_fit_is_quiet():
    from nbdebug.checks import REGISTRY
    memorised = [1.0 * 0.9 ** i for i in range(100)]
    assert REGISTRY["label-mismatch"].run(
        _regression_obs(memorised, [(0.8, 1.0), (0.2, 1.0)])) == []   # held-out improves
    slow = [1.0 - 0.004 * i for i in range(100)]                        # never near 0
    assert REGISTRY["label-mismatch"].run(_regression_obs(slow, [(1.2, 1.0)])) == []
    assert REGISTRY["label-mismatch"].run(_regression_obs(memorised, [])) == "not_checked"


def test_stuck_blames_the_softmax_before_the_call_order():
    """A softmax fed to cross-entropy leaves zero gradients at the step: the cause named is
    the softmax, not the order of zero_grad and backward."""
    flat = [0.69 + 0.03 * math.sin(i) for i in range(120)]
    obs = make_obs(flat, classes=2, grads=[[0.0] * 4] * 120)
    assert _stuck(obs).evidence["causes"][0] == "grads-zero"      # nothing else to go on
    obs.losses[0].input_chain = ["SoftmaxBackward0", "AddmmBackward0"]
    f = _stuck(obs)
    assert f.evidence["causes"] == ["probabilities"], f.evidence
    assert "Softmax" in f.message and "zero_grad" not in f.fix


def test_stuck_never_calls_the_lr_far_too_small_when_point_3_finds_it_too_large():
    spiky = [0.69 + (30.0 if i % 9 == 0 else 0.03 * math.sin(i)) for i in range(120)]
    obs = make_obs(spiky, classes=2, ratios=[[4e-7] * 4] * 120)
    assert REGISTRY["lr-too-large"].run(obs), "the spikes make point 3 fire"
    stuck = REGISTRY["stuck"].run(obs)
    assert not any("far too small" in f.message for f in stuck), stuck
    calm = make_obs([0.69 + 0.03 * math.sin(i) for i in range(120)], classes=2,
                    ratios=[[4e-7] * 4] * 120)
    assert "far too small" in _stuck(calm).message       # without point 3 it is named


def test_stuck_reads_a_plateau_too_late_to_hold_samples_over_the_last_third():
    """A loss that never really moved, whose noisy best window makes its "plateau" begin
    in the last few steps: no sample lies there, so the causes are read over the last
    third (a tanh saturated throughout names it) instead of finding none."""
    loss = ([1.25] * 7 + [1.12 + 0.01 * math.sin(i) for i in range(53)] + [0.9]
            + [1.12 + 0.01 * math.sin(i) for i in range(11)])
    obs = make_obs(loss, classes=3)                # (samples every 10 steps, up to 70)
    sat = obs.series("saturated/m.1")
    for i in range(0, 60, 10):                     # (the tanh's share, up to step 50)
        sat.add(i, 1.0)
    f = _stuck(obs)
    assert "saturated" in f.message
    assert f.evidence["since_step"] == 61          # the plateau's own start is kept


def test_train_mode_gap_within_one_standard_error_is_no_harm():
    """BatchNorm on batches of 4: the training accuracy in train mode from three points
    (96 samples) at 83% against 100% in eval mode on 300 samples is a gap at the 15%
    threshold that its standard error covers: no warning. 60% against 100% is harm."""
    bn = [ModuleInfo("m.0", "Conv2d"), ModuleInfo("m.1", "BatchNorm2d")]

    def obs(acc):
        o = make_obs(noisy_decay(30), modules=bn, train_acc=lambda i: acc,
                     evals={"val": [(1.0, 0.05)]})
        o.batchnorm_batches["m.1"] = {4: 30}
        o.models[0].training_forwards = 30
        return o
    def tiny(acc):
        return next(f for f in run("bn-batch", obs(acc)) if "tiny" in f.title)
    f = tiny(0.83)
    assert f.severity == "info", f.message
    f = tiny(0.60)
    assert f.severity == "warning" and f.evidence["direction"] == "train-worse"


def test_spikes_screened_by_the_window_minimum_are_those_of_the_window_median():
    """Loss spikes are judged against the median of the steps before; the medians are only
    taken where a point passes against the window's minimum. Same spikes as taking every
    median, on random timelines with spikes, dips, tiny and negative values."""
    import numpy as np
    from nbdebug.checks import timeline as tl

    def every_median(shape):
        v, w, out = shape.values, tl.window(len(shape.values)), []
        for i in range(w, len(v)):
            ref = float(np.median(v[i - w:i]))
            if ref > 0 and v[i] >= tl.SPIKE * ref and v[i] - ref >= tl.SPIKE_FLOOR * abs(
                    shape.first):
                out.append((shape.steps[i], v[i], v[i] / ref))
        return out
    rnd = random.Random(1)
    found = 0
    for _ in range(300):
        n = rnd.randint(3, 300)
        base = rnd.choice([1.0, 1e-3, 100.0, -1.0])
        v = [base * (1 + rnd.random()) * (rnd.choice([20, 0.01, -3]) if rnd.random() < 0.05
                                          else 1) for _ in range(n)]
        shape = tl.LossShape(list(range(n)), v, v[0], v[-1], min(v), 0.1, 0)
        got = tl.spikes(shape)
        assert got == every_median(shape)
        found += len(got)
    assert found > 20                                  # (the timelines do hold spikes)
