"""Train/eval modes: optimizer steps taken with a model in eval mode, and held-out
passes run in train mode (``train-eval-mode``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..models import ModelEntry
from .base import Probe


class ModeProbe(Probe):
    def eval_forward(self, entry: ModelEntry, module: nn.Module, args: tuple[Any, ...],
                     output: Any) -> None:
        d = self.ctx.obs.dynamics
        loader = self.ctx.loader
        if not torch.is_grad_enabled() and module.training:
            d["eval_passes_in_train_mode"] = d.get("eval_passes_in_train_mode", 0) + 1
            if loader is not None:
                names = d.setdefault("train_mode_loaders", [])
                if loader.name not in names:
                    names.append(loader.name)
        elif not module.training:
            d["eval_passes_in_eval_mode"] = d.get("eval_passes_in_eval_mode", 0) + 1

    def step_end(self, record: Any) -> None:
        if self.ctx.primary is not None:
            d = self.ctx.obs.dynamics
            d["steps_seen"] = d.get("steps_seen", 0) + 1

    def after_update(self, opt: torch.optim.Optimizer, params: list[torch.Tensor],
                     primary: bool) -> None:
        """An optimizer step of the training: was each watched model in train mode?"""
        if not primary:
            return
        d = self.ctx.obs.dynamics
        for entry in self.ctx.models:
            m = entry.module()
            if m is not None and entry.info.training_forwards + entry.info.eval_forwards and (
                    not m.training):
                d["steps_in_eval_mode"] = d.get("steps_in_eval_mode", 0) + 1
                d.setdefault("first_eval_mode_step", self.ctx.step)
                break
