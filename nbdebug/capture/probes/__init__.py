"""The probes, in the order the dispatcher tells them of each event.

Adding a measurement: write a module here with a ``Probe`` subclass that overrides the
events it needs (``base.EVENTS``), and add the class to ``PROBES``.
"""

from __future__ import annotations

from .activations import ActivationProbe
from .base import EVENTS, Probe
from .describe import DescribeProbe
from .determinism import DeterminismProbe
from .forward import ForwardProbe
from .freeze import FreezeProbe
from .gradients import GradientProbe
from .heldout import HeldoutProbe
from .inits import InitProbe
from .inputs import InputProbe
from .loaders import LoaderProbe
from .losses import LossProbe
from .modes import ModeProbe
from .preflight import PreflightProbe
from .nan import NanProbe

#: registration order is call order: the pre-flight before anything records the first
#: update, inputs before outputs, the NaN replay after the values it reads are on the host
PROBES: tuple[type[Probe], ...] = (
    PreflightProbe, InitProbe, LoaderProbe, InputProbe, NanProbe, ForwardProbe,
    ActivationProbe, LossProbe, GradientProbe, ModeProbe, HeldoutProbe, DeterminismProbe,
    DescribeProbe, FreezeProbe)

__all__ = ["EVENTS", "PROBES", "Probe"]
