"""The core checks on hand-made Observations: each fires on its bug, stays quiet on its edge."""

from __future__ import annotations

import math
import random

import pytest

from nbdebug.checks import REGISTRY, checklist, run_checks, select
from nbdebug.checks.registry import NOT_CHECKED
from nbdebug.observations import (GroupInfo, LoaderInfo, ModelInfo, NanEvent, Observations,
                                  OptimizerInfo, ParamInfo)


def obs_with(**kw) -> Observations:
    obs = Observations(steps=kw.pop("steps", 50), backward_calls=kw.pop("backward_calls", 50))
    for k, v in kw.items():
        setattr(obs, k, v)
    return obs


def run(check_id: str, obs: Observations):
    return REGISTRY[check_id].run(obs)


# -- 13 ---------------------------------------------------------------------------------
def test_nan_origin_names_module_and_step():
    obs = obs_with(nan=NanEvent(7, "forward", "net.2 (Linear)", "nan",
                                {"last_finite_output": "net.1 (ReLU)"}))
    obs.series("loss").add(0, 2.3)
    [f] = run("nan-origin", obs)
    assert f.severity == "problem" and f.point == 13 and f.step == 7
    assert f.where == "net.2 (Linear)" and "net.1 (ReLU)" in f.message


@pytest.mark.parametrize("phase", ["input", "loss", "backward"])
def test_nan_origin_phases_have_their_own_fix(phase):
    [f] = run("nan-origin", obs_with(nan=NanEvent(0, phase, "w" if phase == "backward"
                                                  else None)))
    assert f.fix and f.evidence["phase"] == phase


def test_nan_origin_quiet_without_nan_and_unchecked_without_training():
    assert run("nan-origin", obs_with()) == []
    assert run("nan-origin", obs_with(steps=0, backward_calls=0)) == NOT_CHECKED


# -- 17 ---------------------------------------------------------------------------------
def _model(*params: ParamInfo) -> ModelInfo:
    return ModelInfo("net", "Sequential", params=list(params))


def test_zero_and_constant_weights_fire_biases_do_not():
    zero = ParamInfo("net.0.weight", (8, 4), mean=0.0, std=0.0, min=0.0, max=0.0, absmax=0.0)
    const = ParamInfo("net.2.weight", (2, 8), mean=0.5, std=0.0, min=0.5, max=0.5, absmax=0.5)
    bias = ParamInfo("net.0.bias", (8,), mean=0.0, std=0.0, min=0.0, max=0.0, absmax=0.0)
    fine = ParamInfo("net.4.weight", (2, 8), mean=0.0, std=0.2, min=-0.4, max=0.4, absmax=0.4)
    found = run("zero-init", obs_with(models=[_model(zero, const, bias, fine)]))
    assert [f.where for f in found] == ["net.0.weight", "net.2.weight"]
    assert all(f.severity == "problem" for f in found)


def test_frozen_constant_weight_is_not_flagged():
    frozen = ParamInfo("k.weight", (3, 3), requires_grad=False, mean=1.0, std=0.0, min=1.0,
                       max=1.0, absmax=1.0)
    ok = ParamInfo("k2.weight", (3, 3), mean=0.0, std=0.1, min=-0.2, max=0.2, absmax=0.2)
    assert run("zero-init", obs_with(models=[_model(frozen, ok)])) == []


# -- 8 ----------------------------------------------------------------------------------
def _opt(type_, **g) -> OptimizerInfo:
    return OptimizerInfo("opt", type_, groups=[GroupInfo(index=0, lr=0.1, **g)])


@pytest.mark.parametrize("opt, fires", [
    (_opt("SGD", momentum=0.0, nesterov=False), True),
    (_opt("SGD", momentum=0.9, nesterov=False), False),
    (_opt("SGD", momentum=0.0, nesterov=True), False),
    (_opt("Adam", betas=(0.9, 0.999)), False),
])
def test_vanilla_sgd(opt, fires):
    out = run("sgd-momentum", obs_with(optimizers=[opt]))
    assert bool(out) == fires
    if fires:                       # advice until the run shows harm (test_checks_audits)
        assert out[0].severity == "info" and "momentum=0.9" in out[0].fix


# -- 6 ----------------------------------------------------------------------------------
def _labels(obs: Observations, rows: list[list[float]]) -> None:
    s = obs.series("labels")
    for i, r in enumerate(rows):
        s.add(i, r)


def test_sequential_and_grouped_is_a_problem_mixed_is_advice():
    ld = LoaderInfo("train_dl", role="train", sampler="SequentialSampler", shuffled=False,
                    batch_size=10)
    grouped = obs_with(loaders=[ld])
    _labels(grouped, [[10, 0, 0]] * 5 + [[0, 10, 0]] * 5 + [[0, 0, 10]] * 5)
    [f] = run("shuffle", grouped)
    assert f.severity == "problem" and f.where == "train_dl"
    rng = random.Random(0)
    mixed = obs_with(loaders=[LoaderInfo(**{**ld.__dict__})])
    rows = []
    for _ in range(15):
        r = [0, 0, 0]
        for _ in range(10):
            r[rng.randrange(3)] += 1
        rows.append(r)
    _labels(mixed, rows)
    [f] = run("shuffle", mixed)
    assert f.severity == "info"


def test_shuffled_or_eval_loaders_never_flagged():
    shuffled = LoaderInfo("tr", role="train", sampler="RandomSampler", shuffled=True)
    evald = LoaderInfo("val", role="eval", sampler="SequentialSampler", shuffled=False)
    assert run("shuffle", obs_with(loaders=[shuffled, evald])) == []
    assert run("shuffle", obs_with(loaders=[evald])) == NOT_CHECKED


# -- stuck ------------------------------------------------------------------------------
def _loss(obs: Observations, values: list[float]) -> None:
    for i, v in enumerate(values):
        obs.series("loss").add(i, v)


def test_stuck_fires_when_loss_flat_and_gradients_zero():
    obs = obs_with(steps=60)
    rng = random.Random(1)
    _loss(obs, [2.30 + rng.uniform(-0.05, 0.05) for _ in range(60)])
    for i in range(60):
        obs.series("grad_norm").add(i, [0.0, 0.0])
    [f] = run("stuck", obs)
    assert f.severity == "problem" and "gradients are zero" in f.message


def test_stuck_fires_when_parameters_do_not_move():
    obs = obs_with(steps=60)
    _loss(obs, [1.0 + 0.01 * math.sin(i) for i in range(60)])
    for i in range(0, 60, 10):
        obs.series("update_ratio").add(i, [0.0, 0.0])
        obs.series("grad_norm").add(i, [0.5, 0.2])
    [f] = run("stuck", obs)
    assert "do not change" in f.message


def test_stuck_quiet_on_noisy_but_improving_loss_and_on_convergence():
    rng = random.Random(2)
    noisy = obs_with(steps=200)
    _loss(noisy, [2.3 * math.exp(-i / 80) + rng.uniform(0, 0.3) for i in range(200)])
    for i in range(0, 200, 10):
        noisy.series("update_ratio").add(i, [1e-3, 2e-3])
    assert run("stuck", noisy) == []
    converged = obs_with(steps=100)
    _loss(converged, [2.3 * math.exp(-i / 5) for i in range(100)])
    assert run("stuck", converged) == []


def test_stuck_quiet_on_noisy_plateau_with_moving_parameters():
    rng = random.Random(3)
    obs = obs_with(steps=100)
    _loss(obs, [0.7 + rng.uniform(-0.1, 0.1) for _ in range(100)])
    for i in range(0, 100, 10):
        obs.series("update_ratio").add(i, [1e-3])
        obs.series("grad_norm").add(i, [0.3])
    assert run("stuck", obs) == []


def test_stuck_needs_enough_steps():
    obs = obs_with(steps=10)
    _loss(obs, [1.0] * 10)
    assert run("stuck", obs) == NOT_CHECKED


# -- registry ---------------------------------------------------------------------------
def test_select_presets_ids_points_and_removal():
    assert select("13,stuck") == ["nan-origin", "stuck"]
    assert "stuck" not in select("all,-stuck")
    assert select("none") == []
    with pytest.raises(ValueError, match="unknown check"):
        select("bogus")


def test_checklist_order_and_statuses():
    run_ = run_checks(obs_with(), list(REGISTRY))
    items = checklist(run_)
    keys = [i.point for i in items]
    assert keys[:21] == [*range(1, 21), "stuck"]
    assert {i.status for i in items} <= {"ok", "warning", "problem", "not_applicable",
                                         "not_checked"}


def test_a_crashing_check_is_an_internal_error_not_a_crash():
    from nbdebug.checks.registry import check, REGISTRY as reg

    @check("boom-test", point="boom-test", phase="end")
    def boom(obs):
        raise ZeroDivisionError("bad check")
    try:
        result = run_checks(obs_with(), ["boom-test"])
        assert result.outcomes["boom-test"] == NOT_CHECKED
        assert "bad check" in result.errors[0]["error"]
    finally:
        reg.pop("boom-test")
        from nbdebug.checks import registry
        registry.EXTRA_KEYS.remove("boom-test")


@pytest.mark.parametrize("check_id", sorted(REGISTRY))
def test_every_check_is_quiet_or_unchecked_on_empty_observations(check_id):
    out = REGISTRY[check_id].run(Observations())
    assert out in ("not_checked", "not_applicable") or out == []
