"""Point 13's finer look: keep each training batch of the flush window, and when a flush
shows the first NaN/Inf of a forward, replay that batch op by op (``capture.replay``) to
name the layer and the operation."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..models import ModelEntry
from ..replay import Replay
from ..structure import SpanInputs
from .base import Probe


class NanProbe(Probe):
    STEADY = frozenset({"train_input"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.replay = Replay(ctx, ctx.guard)

    def train_input(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.replay.remember(entry, module, args)

    def steady_inputs(self, entry: ModelEntry, module: nn.Module,
                      items: SpanInputs) -> None:
        self.replay.remember_span(entry, module, items)

    def flush(self) -> None:
        self._replay()

    def finish(self) -> None:
        self._replay()

    def _replay(self) -> None:
        try:
            self.replay.after_flush()
        except Exception:
            self.replay.guard.paused = False
            self.ctx.error("nan replay")
