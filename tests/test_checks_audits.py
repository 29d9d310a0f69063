"""The before-training audits on hand-made Observations: each fires on its bug and stays
quiet on the edge next to it."""

from __future__ import annotations

import math

import pytest

from nbdebug.checks import REGISTRY
from nbdebug.checks.registry import NOT_APPLICABLE, NOT_CHECKED
from nbdebug.observations import (GroupInfo, LoaderInfo, LossCall, ModelInfo, ModuleInfo,
                                  Observations, OptimizerInfo, ParamInfo)


def run(check_id: str, obs: Observations):
    return REGISTRY[check_id].run(obs)


def severities(out) -> list[str]:
    assert not isinstance(out, str), out
    return sorted(f.severity for f in out)


def model(name="net", modules=(), params=(), order=None, forwards=5) -> ModelInfo:
    mods = [ModuleInfo(name=name, type="Sequential", leaf=False)]
    mods += [ModuleInfo(name=f"{name}.{n}", type=t, attrs=dict(a)) for n, t, a in modules]
    return ModelInfo(name=name, type="Sequential", modules=mods, params=list(params),
                     exec_order=[f"{name}.{n}" for n in (order or [])],
                     training_forwards=forwards)


def trained(**kw) -> Observations:
    obs = Observations(**kw)
    obs.steps = obs.backward_calls = 10
    return obs


# -- point 2 ----------------------------------------------------------------------------
def _opt(type_, wd, ndims=(2, 1), decoupled=None):
    extra = {} if decoupled is None else {"decoupled_weight_decay": decoupled}
    g = GroupInfo(index=0, lr=0.01, weight_decay=wd, params=["net.0.weight", "net.0.bias"][
        :len(ndims)], param_ndims=list(ndims), extra=extra)
    return OptimizerInfo(name="opt", type=type_, groups=[g])


@pytest.mark.parametrize("type_, wd, decoupled, expected", [
    ("SGD", 5e-4, None, ["info"]),          # the classic ImageNet recipe: advice only
    ("SGD", 1e-3, None, ["warning"]),
    ("Adam", 0.05, None, ["problem"]),      # L2 through Adam: heavy
    ("AdamW", 0.01, None, ["info"]),        # AdamW's default: common practice
    ("AdamW", 0.3, None, ["warning"]),
    ("Adam", 0.3, True, ["warning"]),       # Adam(decoupled_weight_decay=True) == AdamW
    ("AdamW", 2.0, None, ["problem"]),
])
def test_bias_decay_severity_rule(type_, wd, decoupled, expected):
    obs = trained(optimizers=[_opt(type_, wd, decoupled=decoupled)])
    out = run("bias-decay", obs)
    assert severities(out) == expected
    assert out[0].evidence["params"] == ["net.0.bias"]


def test_bias_decay_quiet_without_1d_params_or_decay():
    assert run("bias-decay", trained(optimizers=[_opt("SGD", 0.1, ndims=(2,))])) == []
    assert run("bias-decay", trained(optimizers=[_opt("SGD", 0.0)])) == []
    assert run("bias-decay", trained()) == NOT_CHECKED


# -- point 4 ----------------------------------------------------------------------------
def _loss(fn, chain, lo=-3.0, hi=3.0):
    return LossCall(fn=fn, calls=1, input_chain=chain, input_min=lo, input_max=hi)


@pytest.mark.parametrize("fn, chain, hi", [
    ("cross_entropy", ["SoftmaxBackward0", "AddmmBackward0"], 1.0),
    ("cross_entropy", ["ViewBackward0", "ReluBackward0", "AddmmBackward0"], 4.0),
    ("cross_entropy", ["TanhBackward0", "AddmmBackward0"], 1.0),
    ("binary_cross_entropy_with_logits", ["SigmoidBackward0", "AddmmBackward0"], 1.0),
    ("nll_loss", ["AddmmBackward0"], 2.5),                 # raw logits
    ("nll_loss", ["SoftmaxBackward0", "AddmmBackward0"], 0.9),
])
def test_logits_activation_fires(fn, chain, hi):
    out = run("logits-activation", trained(losses=[_loss(fn, chain, hi=hi)]))
    assert severities(out) == ["problem"]


@pytest.mark.parametrize("fn, chain, hi", [
    ("cross_entropy", ["AddmmBackward0"], 5.0),
    ("cross_entropy", ["SelectBackward0", "ViewBackward0", "AddmmBackward0"], 5.0),
    ("cross_entropy", ["LeakyReluBackward0", "AddmmBackward0"], 5.0),
    ("nll_loss", ["LogSoftmaxBackward0", "AddmmBackward0"], -0.01),
    ("nll_loss", ["SubBackward0", "AddmmBackward0"], -0.001),   # x - logsumexp(x)
    ("binary_cross_entropy", ["SigmoidBackward0", "AddmmBackward0"], 0.9),
])
def test_logits_activation_quiet(fn, chain, hi):
    assert run("logits-activation", trained(losses=[_loss(fn, chain, hi=hi)])) == []


def test_logits_activation_not_applicable_for_regression():
    out = run("logits-activation", trained(losses=[_loss("mse_loss", ["AddmmBackward0"])]))
    assert out == NOT_APPLICABLE


# -- point 5 ----------------------------------------------------------------------------
def _inputs(mean, std, lo, hi, ndim=2):
    return {"inputs": {"net": {"dtype": "float32", "batches": 5, "features": len(mean),
                               "mean": mean, "std": std, "min": lo, "max": hi,
                               "ndim": ndim}}}


def test_input_range_raw_pixels():
    extra = _inputs([120.0, 118.0, 110.0], [60.0, 61.0, 59.0], [0.0] * 3, [255.0] * 3, 4)
    assert severities(run("input-range", trained(extra=extra))) == ["warning"]


def test_input_range_scales_and_offsets():
    scaled = _inputs([0.0, 0.1, 50000.0], [1.0, 1.0, 30000.0], [-3, -3, 0], [3, 3, 1e5])
    assert severities(run("input-range", trained(extra=scaled))) == ["warning"]
    year = _inputs([0.0, 2005.0], [1.0, 9.0], [-3.0, 1990.0], [3.0, 2020.0])
    assert severities(run("input-range", trained(extra=year))) == ["warning"]


def test_input_range_quiet_on_standardised_binary_and_unit_images():
    std = _inputs([0.0, 0.01, -0.02], [1.0, 0.99, 1.01], [-3.1, -2.9, -3.0], [3.0, 3.2, 2.9])
    assert run("input-range", trained(extra=std)) == []
    p = 0.995                                  # a rare one-hot column: |mean|/std ~ 14
    onehot = _inputs([p, 0.0], [math.sqrt(p * (1 - p)), 1.0], [0.0, -3.0], [1.0, 3.0])
    assert run("input-range", trained(extra=onehot)) == []
    unit = _inputs([0.45, 0.5, 0.4], [0.28, 0.29, 0.3], [0.0] * 3, [1.0] * 3, 4)
    assert run("input-range", trained(extra=unit)) == []
    assert run("input-range", trained(extra={"inputs": {"net": {"dtype": "int64"}}})) \
        == NOT_APPLICABLE


# -- points 6 and 7 --------------------------------------------------------------------
def _labels(obs: Observations, rows):
    s = obs.series("labels")
    s.columns = [str(i) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        s.add(i, list(r))


SORTED = [[10, 0, 0]] * 5 + [[0, 10, 0]] * 5 + [[0, 0, 10]] * 5
MIXED = [[4, 3, 3], [3, 4, 3], [3, 3, 4], [4, 4, 2], [2, 4, 4], [3, 4, 3]] * 2
BUCKETS = [[10, 0, 0], [0, 0, 10], [0, 10, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]] * 2


def _loader(shuffled):
    return LoaderInfo(name="dl", role="train", sampler="SequentialSampler" if not shuffled
                      else "RandomSampler", shuffled=shuffled, batch_size=10, epochs=2)


def test_shuffle_sequential_grouped_is_problem_mixed_is_info():
    obs = trained(loaders=[_loader(False)])
    _labels(obs, SORTED)
    assert severities(run("shuffle", obs)) == ["problem"]
    obs = trained(loaders=[_loader(False)])
    _labels(obs, MIXED)
    assert severities(run("shuffle", obs)) == ["info"]


def test_shuffle_repeated_order_without_loader():
    obs = trained()
    obs.input_fingerprints = [[10.0, float(i), float(i) * 2, 1.0] for i in range(5)] * 2
    _labels(obs, MIXED)
    out = run("shuffle", obs)
    assert severities(out) == ["info"] and out[0].evidence["batches_per_epoch"] == 5
    _labels(obs, SORTED)
    obs.timelines.pop("labels")
    _labels(obs, SORTED)
    assert severities(run("shuffle", obs)) == ["problem"]


def test_shuffle_sorted_single_epoch_and_quiet_edges():
    obs = trained()
    _labels(obs, SORTED)
    assert severities(run("shuffle", obs)) == ["problem"]
    obs = trained(loaders=[_loader(True)])
    _labels(obs, BUCKETS)                    # grouped but in a new order: point 7's business
    assert run("shuffle", obs) == []
    obs = trained()
    obs.input_fingerprints = [[150.0, 1.0, 2.0, 3.0]] * 8   # one full batch: no order
    _labels(obs, MIXED)
    assert run("shuffle", obs) == []
    eval_only = trained(loaders=[LoaderInfo(name="val", role="eval", shuffled=False)])
    assert run("shuffle", eval_only) == NOT_CHECKED


def test_single_label_batches():
    obs = trained()
    _labels(obs, BUCKETS)
    assert severities(run("single-label", obs)) == ["problem"]
    obs = trained()
    _labels(obs, [[9, 1, 0], [0, 9, 1], [1, 0, 9], [9, 0, 1], [1, 9, 0]] * 2)
    assert severities(run("single-label", obs)) == ["warning"]


def test_single_label_quiet_when_imbalance_explains_it():
    obs = trained()
    # 95/5 data in batches of 4: most batches hold one class by chance
    _labels(obs, [[4, 0]] * 16 + [[3, 1]] * 4)
    assert run("single-label", obs) == []
    obs = trained()
    _labels(obs, MIXED)
    assert run("single-label", obs) == []


# -- point 8 ----------------------------------------------------------------------------
def _loss_curve(obs: Observations, values) -> Observations:
    s = obs.series("loss")
    for i, v in enumerate(values):
        s.add(i, float(v))
    return obs


STALLED = [2.30 - 0.001 * i for i in range(40)]          # 2% down in 40 steps
PROGRESS = [2.30 * 0.97 ** i for i in range(40)]          # down to 0.7 in 40 steps


def test_sgd_momentum():
    plain = OptimizerInfo(name="o", type="SGD", groups=[GroupInfo(0, 0.1, momentum=0.0)])
    assert severities(run("sgd-momentum", trained(optimizers=[plain]))) == ["info"]
    healthy = run("sgd-momentum", _loss_curve(trained(optimizers=[plain]), PROGRESS))
    assert severities(healthy) == ["info"] and "no harm" in healthy[0].message
    out = run("sgd-momentum", _loss_curve(trained(optimizers=[plain]), STALLED))
    assert severities(out) == ["warning"] and "stall" in out[0].title
    # the fix keeps the step size: momentum 0.9 with lr scaled by 1 - 0.9
    assert out[0].evidence["fix"] == {"momentum": 0.9, "lr": 0.01, "lr_scale": 0.1}
    assert "lr=0.01, momentum=0.9" in out[0].fix
    # a stall that a constant init explains is not vanilla SGD's harm: one cause, one finding
    constant = ParamInfo(name="net.0.weight", shape=(4, 4), mean=0.0, std=0.0, min=0.0, max=0.0,
                         absmax=0.0)
    explained = _loss_curve(trained(optimizers=[plain], models=[model(params=[constant])]),
                            STALLED)
    assert severities(run("sgd-momentum", explained)) == ["info"]
    nesterov = OptimizerInfo(name="o", type="SGD", groups=[
        GroupInfo(0, 0.1, momentum=0.9, nesterov=True)])
    assert run("sgd-momentum", trained(optimizers=[nesterov])) == []


# -- points 12 and 14 --------------------------------------------------------------------
BN_NET = [("0", "Conv2d", {"bias": False}), ("1", "BatchNorm2d", {}), ("2", "ReLU", {})]


def test_bn_batch_tiny_and_last_batch_of_one():
    obs = trained(models=[model(modules=BN_NET, order=["0", "1", "2"])])
    obs.batchnorm_batches = {"net.1": {4: 16}}
    assert severities(run("bn-batch", obs)) == ["info"]
    obs.batchnorm_batches = {"net.1": {32: 10, 1: 1}}
    out = run("bn-batch", obs)
    assert severities(out) == ["info"] and "drop_last" in out[0].fix
    # eval mode far worse than train mode: the running statistics do not fit
    obs.batchnorm_batches = {"net.1": {4: 16}}
    _rounds(obs, train_acc=0.95, accs=[0.5, 0.55, 0.5], losses=[1.0, 0.9, 1.0])
    out = run("bn-batch", obs)
    assert severities(out) == ["warning"] and "eval mode" in out[0].message


def _rounds(obs, train_acc, accs, losses, train_accs=None):
    t = obs.series("train_acc")
    for i in range(40):
        t.add(i, train_accs[min(i * len(train_accs) // 40, len(train_accs) - 1)]
              if train_accs else train_acc)
    e = obs.series("eval/val")
    for k, (a, v) in enumerate(zip(accs, losses)):
        e.add(10 * (k + 1), {"round": k + 1, "acc": a, "loss": v, "n": 200})
    return obs


def test_bn_batch_quiet_and_not_applicable():
    obs = trained(models=[model(modules=BN_NET)])
    obs.batchnorm_batches = {"net.1": {64: 20, 16: 1}}
    assert run("bn-batch", obs) == []
    assert run("bn-batch", trained(models=[model(modules=[("0", "Linear", {})])])) \
        == NOT_APPLICABLE


def test_bn_placement_is_information_only():
    out = run("bn-placement", trained(models=[model(modules=BN_NET, order=["0", "1", "2"])]))
    assert severities(out) == ["info"]
    assert out[0].evidence["layers"][0]["placement"] == "before the activation"
    after = [("0", "Linear", {}), ("1", "ReLU", {}), ("2", "BatchNorm1d", {})]
    out = run("bn-placement", trained(models=[model(modules=after)]))
    assert out[0].evidence["layers"][0]["placement"] == "after the activation"
    assert run("bn-placement", trained(models=[model(modules=after[:2])])) == NOT_APPLICABLE


# -- point 15 ---------------------------------------------------------------------------
def test_dropout_after_conv():
    mods = [("0", "Conv2d", {}), ("1", "ReLU", {}), ("2", "Dropout2d", {"p": 0.5})]
    assert severities(run("dropout-conv", trained(models=[model(modules=mods)]))) \
        == ["info"]
    rising = _rounds(trained(models=[model(modules=mods)]), 0.9, [0.8, 0.82, 0.81, 0.8, 0.8],
                     [0.5, 0.45, 0.52, 0.6, 0.7])
    out = run("dropout-conv", rising)
    assert severities(out) == ["warning"] and "rose" in out[0].message
    gap = _rounds(trained(models=[model(modules=mods)]), None, [0.7, 0.7, 0.7, 0.7],
                  [0.5, 0.5, 0.5, 0.5], train_accs=[0.7, 0.8, 0.9, 1.0])
    out = run("dropout-conv", gap)
    assert severities(out) == ["warning"] and "gap" in out[0].message


def test_dropout_quiet_when_small_or_in_the_head():
    small = [("0", "Conv2d", {}), ("1", "ReLU", {}), ("2", "Dropout2d", {"p": 0.1})]
    assert run("dropout-conv", trained(models=[model(modules=small)])) == []
    head = [("0", "Conv2d", {}), ("1", "Flatten", {}), ("2", "Dropout", {"p": 0.5}),
            ("3", "Linear", {})]
    assert run("dropout-conv", trained(models=[model(modules=head)])) == []
    assert run("dropout-conv", trained(models=[model(modules=head[:2])])) == NOT_APPLICABLE
    # AlexNet: the classifier's Dropout follows a functional flatten of the conv features
    alexnet = [("features.0", "Conv2d", {}), ("features.1", "ReLU", {}),
               ("features.2", "MaxPool2d", {}), ("classifier.0", "Dropout", {"p": 0.5}),
               ("classifier.1", "Linear", {})]
    assert run("dropout-conv", trained(models=[model(modules=alexnet)])) == []


# -- point 16 ---------------------------------------------------------------------------
def test_batch_size_info_only_for_large_batches():
    big = LoaderInfo(name="dl", role="train", batch_size=512, dataset_size=1000)
    assert severities(run("batch-size", trained(loaders=[big]))) == ["info"]
    small = LoaderInfo(name="dl", role="train", batch_size=32, dataset_size=1000)
    assert run("batch-size", trained(loaders=[small])) == []
    assert run("batch-size", trained()) == NOT_CHECKED


# -- point 17 ---------------------------------------------------------------------------
def _weight(std, fan_in=100, mn=-0.1, mx=0.1):
    return ParamInfo(name="net.0.weight", shape=(10, fan_in), mean=0.0, std=std, min=mn,
                     max=mx, absmax=max(abs(mn), abs(mx)))


def test_init_zero_and_scale():
    lin = [("0", "Linear", {})]
    zero = model(modules=lin, params=[_weight(0.0, mn=0.0, mx=0.0)])
    assert severities(run("zero-init", trained(models=[zero]))) == ["problem"]
    # a scale far from the fan-in rule is advice until the training stalls
    huge = model(modules=lin, params=[_weight(1.0, fan_in=784, mn=-4, mx=4)])
    assert severities(run("zero-init", trained(models=[huge]))) == ["info"]
    tiny = model(modules=lin, params=[_weight(1e-4)])
    assert severities(run("zero-init", trained(models=[tiny]))) == ["info"]
    stalls = _loss_curve(trained(models=[tiny]), STALLED)
    out = run("zero-init", stalls)
    assert severities(out) == ["warning"] and "fell only 2%" in out[0].message


def test_init_quiet_for_default_kaiming_and_xavier():
    lin = [("0", "Linear", {})]
    for std in (1 / math.sqrt(300), math.sqrt(2 / 100), math.sqrt(2 / 110), 0.02):
        ok = model(modules=lin, params=[_weight(std)])
        assert run("zero-init", trained(models=[ok])) == [], std
    emb = model(modules=[("0", "Embedding", {})], params=[_weight(1.0, fan_in=784)])
    assert run("zero-init", trained(models=[emb])) == []


# -- point 18 ---------------------------------------------------------------------------
def test_missing_bias():
    mods = [("0", "Linear", {"bias": False}), ("1", "ReLU", {}), ("2", "Linear", {"bias": True})]
    assert severities(run("missing-bias", trained(models=[model(modules=mods)]))) \
        == ["info"]
    stalls = _loss_curve(trained(models=[model(modules=mods)]), STALLED)
    assert severities(run("missing-bias", stalls)) == ["warning"]
    late_bn = [("0", "Conv2d", {"bias": False}), ("1", "ReLU", {}), ("2", "BatchNorm2d", {})]
    assert severities(run("missing-bias", _loss_curve(trained(models=[model(modules=late_bn)]),
                                                STALLED))) == ["warning"]
    # two optimizers (a GAN): the losses are a game, not a measure of progress
    gan = _loss_curve(trained(models=[model(modules=mods)]), STALLED)
    gan.optimizers = [OptimizerInfo("opt_g", "Adam"), OptimizerInfo("opt_d", "Adam")]
    assert severities(run("missing-bias", gan)) == ["info"]


def test_missing_bias_quiet_before_norm_and_in_bias_free_transformers():
    assert run("missing-bias", trained(models=[model(modules=BN_NET)])) == []
    llama = [("0", "RMSNorm", {}), ("1", "Linear", {"bias": False}), ("2", "SiLU", {}),
             ("3", "Linear", {"bias": False})]
    assert severities(run("missing-bias", trained(models=[model(modules=llama)]))) \
        == ["info"]


# -- point 20 ---------------------------------------------------------------------------
def _kl(reduction="batchmean", **extra):
    base = {"input_max": -0.01, "input_lse_dev": 1e-6, "target_min": 0.0,
            "target_norm_dev": 1e-6, "loss_min": 0.2, "log_target": False}
    base.update(extra)
    return LossCall(fn="kl_div", calls=3, reduction=reduction, extra=base)


@pytest.mark.parametrize("extra", [
    {"input_max": 0.4},                                  # probabilities as input
    {"input_lse_dev": 0.7},                              # log of unnormalised scores
    {"target_min": -2.3},                                # log-probs as target
    {"target_norm_dev": 0.5},                            # rows not summing to 1
    {"loss_min": -0.3},                                  # negative KL
    {"log_target": True, "target_norm_dev": 0.9, "target_max": 0.5},
])
def test_kl_div_problems(extra):
    out = run("kl-div", trained(losses=[_kl(**extra)]))
    assert severities(out) == ["problem"]


def test_kl_div_mean_reduction_and_healthy():
    assert severities(run("kl-div", trained(losses=[_kl("mean")]))) == ["warning"]
    assert run("kl-div", trained(losses=[_kl()])) == []
    # reduction='none': elementwise terms may be negative for true distributions
    assert run("kl-div", trained(losses=[_kl("none", loss_min=-0.2)])) == []
    assert run("kl-div", trained(losses=[LossCall(fn="mse_loss")])) == NOT_APPLICABLE


# -- optimizer-params and frozen -------------------------------------------------------
def _params(in_opt, grad=True):
    return [ParamInfo(name=f"net.{i}.weight", shape=(4, 4), requires_grad=grad,
                      in_optimizer=o) for i, o in enumerate(in_opt)]


def test_optimizer_params():
    opt = OptimizerInfo(name="opt", type="Adam", foreign_params=2)
    stale = trained(models=[model(params=_params([False, False]))], optimizers=[opt])
    out = run("optimizer-params", stale)
    assert severities(out) == ["problem"] and "another" in out[0].title
    part = trained(models=[model(params=_params([True, False]))],
                   optimizers=[OptimizerInfo(name="opt", type="Adam")])
    assert severities(run("optimizer-params", part)) == ["warning"]


def test_optimizer_params_quiet_edges():
    opt = OptimizerInfo(name="opt", type="Adam")
    ok = trained(models=[model(params=_params([True, True]))], optimizers=[opt])
    assert run("optimizer-params", ok) == []
    teacher = model(name="teacher", params=_params([False]), forwards=0)
    assert run("optimizer-params", trained(models=[model(params=_params([True])), teacher],
                                           optimizers=[opt])) == []
    frozen_part = model(params=_params([True]) + [ParamInfo("net.9.weight", (2, 2), False,
                                                            False)])
    assert run("optimizer-params", trained(models=[frozen_part], optimizers=[opt])) == []


def test_frozen():
    assert severities(run("frozen", trained(models=[model(params=_params([True], grad=False))]))) \
        == ["problem"]
    backbone = model(name="backbone", params=_params([False], grad=False))
    head = model(name="head", params=_params([True]))
    assert run("frozen", trained(models=[backbone, head])) == []
    assert run("frozen", trained()) == NOT_CHECKED


def test_every_audit_is_registered_with_its_point():
    points = {REGISTRY[c].point for c in (
        "bias-decay", "logits-activation", "input-range", "shuffle", "single-label",
        "sgd-momentum", "bn-batch", "bn-placement", "dropout-conv", "batch-size", "zero-init",
        "missing-bias", "kl-div", "optimizer-params", "frozen")}
    assert points == {2, 4, 5, 6, 7, 8, 12, 14, 15, 16, 17, 18, 20, "optimizer-params",
                      "frozen"}


def test_label_mixing_skips_vocabularies():
    """Token-level losses over a vocabulary are not class batches: no judgement, no cost."""
    obs = trained()
    s = obs.series("labels")
    for i in range(8):
        row = [0.0] * 5000
        row[i] = 64.0
        s.add(i, row)
    assert run("single-label", obs) == NOT_CHECKED


def test_input_range_quiet_on_standardised_sparse_pixels():
    """Normalised MNIST-like pixels: constant borders (float noise in the std) and rarely
    lit pixels have a huge |mean|/std but are standardised as a whole."""
    bg = -0.4242
    mean = [bg, bg + 0.002, 0.0, bg + 1e-4]
    std = [1e-9, 0.09, 1.0, 0.01]
    lo = [bg, bg, -0.42, bg]
    hi = [bg, 2.8, 2.8, -0.1]
    assert run("input-range", trained(extra=_inputs(mean, std, lo, hi))) == []


def test_input_range_large_single_feature():
    price = _inputs([450000.0], [200000.0], [100000.0], [1e6])
    assert severities(run("input-range", trained(extra=price))) == ["warning"]


def test_the_expected_label_entropy_of_random_batches_is_exact():
    """Points 6 and 7 compare the batches' label entropy with that of random batches of
    the same size: computed exactly, it must agree with a large simulation of them."""
    import numpy as np
    from nbdebug.checks.mixing import _entropies, expected_entropy
    rng = np.random.default_rng(1)
    for size, p in [(32, np.full(10, 0.1)), (4, np.array([0.5, 0.5])),
                    (64, rng.dirichlet(np.ones(20))), (8, np.array([0.999, 0.001]))]:
        h = _entropies(rng.multinomial(size, p, size=200_000))
        # (within four standard errors of the simulated mean)
        assert abs(expected_entropy(size, p) - h.mean()) < 4 * h.std() / len(h) ** 0.5
    assert expected_entropy(1, np.array([0.3, 0.7])) == 0.0     # one sample: one label
    assert expected_entropy(128, np.array([1.0])) == 0.0
