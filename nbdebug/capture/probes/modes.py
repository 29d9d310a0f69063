"""Train/eval modes: optimizer steps taken with a model in eval mode, held-out passes run
in train mode, and dropout left on in an eval-mode forward (a functional ``F.dropout``
with its training=True default, an attention's ``dropout_p``): ``train-eval-mode``."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from ... import keys
from .. import structure
from ..models import ModelEntry
from .base import Probe


#: functional dropouts: (name, position of ``p``, position of ``training``)
DROPOUTS = (("dropout", 1, 2), ("dropout1d", 1, 2), ("dropout2d", 1, 2), ("dropout3d", 1, 2),
            ("alpha_dropout", 1, 2), ("feature_alpha_dropout", 1, 2))
#: distinct eval-mode dropout calls kept
EVAL_DROPOUT_CALLS = 5
_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TORCH_MODULES = os.path.dirname(os.path.abspath(nn.modules.__file__))


class ModeProbe(Probe):
    STEADY = frozenset({"step_end"})

    def attach(self, patches: Any, guard: Any) -> None:
        import torch.nn.functional as F
        for name, p_at, training_at in DROPOUTS:
            if hasattr(F, name):
                patches.wrap(F, name, guard, before=lambda a, k, name=name, pa=p_at,
                             ta=training_at: self._dropout(name, _arg(a, k, pa, "p", 0.5),
                                                           _arg(a, k, ta, "training", True)))
        # model.eval() on a watched model: a held-out pass is coming, watch it from its
        # first forward (kept on steady steps: called at mode changes, not every step)
        patches.wrap(nn.Module, "train", guard, steady=True, before=self._mode_change)
        if hasattr(F, "scaled_dot_product_attention"):
            patches.wrap(F, "scaled_dot_product_attention", guard,
                         before=lambda a, k: self._dropout(
                             "scaled_dot_product_attention",
                             _arg(a, k, 4, "dropout_p", 0.0), True))

    def _mode_change(self, args: tuple, kwargs: dict) -> None:
        mode = args[1] if len(args) > 1 else kwargs.get("mode", True)
        if mode is False and args and self.ctx.models.root(args[0]) is not None:
            self.ctx.wake()

    def _dropout(self, name: str, p: Any, training: Any) -> None:
        """A dropout that is on while the gradients are off and a watched model is in eval
        mode: a held-out forward made random (``F.dropout``'s training=True default, or
        an attention's dropout_p not tied to ``self.training``)."""
        if not (training is True and isinstance(p, (int, float)) and p > 0
                and not torch.is_grad_enabled()):
            return
        if not any((m := e.module()) is not None and not m.training for e in self.ctx.models):
            return
        module = _dropout_module()
        if module is not None and self.ctx.models.owner(module) is not None:
            return      # a model's own Dropout layer put in train mode on purpose (MC dropout)
        calls = self.ctx.obs.dynamics.setdefault(keys.EVAL_DROPOUT, [])
        where = structure.user_line()
        if len(calls) < EVAL_DROPOUT_CALLS and all(c["where"] != where for c in calls):
            calls.append({"call": f"F.{name}", "p": float(p), "where": where})
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
        self.steady_steps(1)

    def steady_steps(self, count: int) -> None:
        if self.ctx.primary is not None:
            d = self.ctx.obs.dynamics
            d["steps_seen"] = d.get("steps_seen", 0) + count

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


def _arg(args: tuple, kwargs: dict, at: int, name: str, default: Any) -> Any:
    return args[at] if len(args) > at else kwargs.get(name, default)


def _dropout_module() -> nn.Module | None:
    """The torch dropout module whose forward made this call, if one did."""
    import sys
    frame: Any = sys._getframe(1)
    package = _PACKAGE
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame = frame.f_back
    if frame is None or not frame.f_code.co_filename.startswith(_TORCH_MODULES):
        return None
    module = frame.f_locals.get("self")
    return module if isinstance(module, nn.Module) else None


