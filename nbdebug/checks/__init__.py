"""Checks: pure functions from Observations to Findings, one module per theme.

Importing this package registers every check.
"""

from . import dynamics, gradients, heldout, logits, lr, modes, nan  # noqa: F401
from . import data, distributed, loss, model, optimizer, preflight, setup  # noqa: F401
from .registry import (NOT_APPLICABLE, NOT_CHECKED, REGISTRY, check, checklist, presets,
                       run_checks, select)

__all__ = ["REGISTRY", "NOT_APPLICABLE", "NOT_CHECKED", "check", "checklist", "presets",
           "run_checks", "select"]
