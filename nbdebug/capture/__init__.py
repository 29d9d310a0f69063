"""Capture: the only layer that touches torch internals."""

from .core import Capture, Options
from .patches import Patches

__all__ = ["Capture", "Options", "Patches"]
