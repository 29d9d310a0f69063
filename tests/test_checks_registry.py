"""The registry stamps each finding with its check's id and article point."""

from __future__ import annotations

from nbdebug.checks import REGISTRY, check, finding, run_checks
from nbdebug.checks.registry import EXTRA_KEYS
from nbdebug.observations import GroupInfo, Observations, OptimizerInfo


def test_findings_get_the_id_and_point_of_their_check():
    @check("test-stamp", point="test-stamp", phase="end")
    def stamp(obs):
        return [finding("info", "t", "m", "f")]

    try:
        direct = stamp(Observations())
        assert (direct[0].check, direct[0].point) == ("test-stamp", "test-stamp")
        run = run_checks(Observations(), ["test-stamp"])
        assert [(f.check, f.point) for f in run.findings] == [("test-stamp", "test-stamp")]
    finally:
        REGISTRY.pop("test-stamp")
        EXTRA_KEYS.remove("test-stamp")


def test_a_real_check_stamps_its_own_point():
    obs = Observations(optimizers=[OptimizerInfo("opt", "SGD", [GroupInfo(0, lr=0.1)])])
    out = REGISTRY["sgd-momentum"].run(obs)
    assert out and all((f.check, f.point) == ("sgd-momentum", 8) for f in out)
