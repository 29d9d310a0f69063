"""Capture: the only layer that touches torch internals (a dispatcher and its probes)."""

from .core import Capture, Options, StopTraining
from .patches import Patches

__all__ = ["Capture", "Options", "Patches", "StopTraining"]
