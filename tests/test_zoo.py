"""Invariants over the model zoo: diagnosing never changes the training, leaves nothing
behind, and lets the model be garbage-collected."""

from __future__ import annotations

import gc
import random
import weakref

import numpy as np
import pytest
import torch

import nbdebug
from test_invariants import _nbdebug_leftovers
from zoo import ZOO


def _seeded(fn, diagnose: bool):
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    if diagnose:
        with nbdebug.diagnose(quiet=True, every=1):
            model, losses = fn()
    else:
        model, losses = fn()
    rng = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    return model, losses, rng


def _compile_works() -> bool:
    try:
        torch.compile(torch.nn.Linear(2, 2))(torch.ones(1, 2))
        return True
    except Exception:
        return False


@pytest.mark.parametrize("name", ZOO)
def test_zoo_training_is_bitwise_identical_under_diagnosis(name):
    if name == "compiled" and not _compile_works():
        pytest.skip("torch.compile does not work on this machine's CPU toolchain")
    model_a, losses_a, rng_a = _seeded(ZOO[name], diagnose=False)
    model_b, losses_b, rng_b = _seeded(ZOO[name], diagnose=True)
    report = nbdebug.last_report()
    assert report.errors == [], report.errors[0]["traceback"]
    assert report.run["steps"] > 0
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{name}: {k} differs"
    assert len(losses_a) == len(losses_b)
    assert all(torch.equal(a, b) for a, b in zip(losses_a, losses_b)), name
    assert torch.equal(rng_a[0], rng_b[0]) and (rng_a[1] == rng_b[1]).all()
    assert rng_a[2] == rng_b[2]
    assert _nbdebug_leftovers() == []


@pytest.mark.parametrize("name", ["mlp", "gru", "gan_two_optimizers"])
def test_model_can_be_garbage_collected_after_the_diagnosis(name):
    model, _, _ = _seeded(ZOO[name], diagnose=True)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None, "nbdebug kept the model alive"
