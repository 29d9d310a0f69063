"""Checks: pure functions from Observations to Findings, one module per theme.

Importing this package registers every check.
"""

from . import dynamics, gradients, heldout, logits, lr, modes, nan  # noqa: F401
from . import data, distributed, freeze, inits, loss, model, optimizer, preflight  # noqa: F401
from . import setup  # noqa: F401  (registration)
from . import silent  # noqa: F401  (registration)
from .registry import (NOT_APPLICABLE, NOT_CHECKED, REGISTRY, check, checklist, finding,
                       presets, run_checks, select)

__all__ = ["REGISTRY", "NOT_APPLICABLE", "NOT_CHECKED", "check", "checklist", "finding",
           "presets", "run_checks", "select"]
