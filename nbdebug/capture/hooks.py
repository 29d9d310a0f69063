"""The hooks of each kind of step, swapped as the dispatcher moves between them.

- ``full``: global module hooks (every module: discovery, per-layer guards and
  statistics), the optimizer step hooks and every patch.
- ``lean``: a forward hook on each model's root and pre-hooks on its BatchNorm layers,
  the optimizer step hooks and every patch.
- ``light`` (a light sample): ``lean``'s hooks and a forward hook on each activation
  layer whose outputs the light statistics read (``probes.activations.LIGHT_TYPES``).
- ``steady``: a forward hook on each model's root and ``Tensor.backward``: nothing else.
  The patches that only the other steps need are taken off (``Patches.set_steady``).

A root's forward hook (lean and steady steps) is a ``rootcall.RootCall`` where the model
allows it: the same call after the forward, without torch's hooked call path.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)

from .models import Models
from .patches import ModuleHook, Patches
from .rootcall import root_hook
from .probes.activations import LIGHT_TYPES

MODES = ("full", "lean", "light", "steady")


class StepHooks:
    def __init__(self, patches: Patches, models: Models,
                 callbacks: dict[str, Callable[..., Any]], guard: Any) -> None:
        self.patches = patches
        self.guard = guard      # (counts the roots' calls through a RootCall)
        self.models = models
        self.on = callbacks     # pre, post, lean, light, steady, bn, opt_pre, opt_post
        self.mode: str | None = None
        self._handles: list[Any] = []

    def set(self, mode: str) -> None:
        """Install the hooks of ``mode`` (the current ones are removed first)."""
        for h in self._handles:
            self.patches.remove(h)
        self._handles = []
        self.mode = mode
        on = self.on
        hs: list[Any] = []
        if mode == "full":
            mod = torch.nn.modules.module
            hs += [mod.register_module_forward_pre_hook(on["pre"]),
                   mod.register_module_forward_hook(on["post"], always_call=True)]
        else:
            # (the steady hook, ``steady.Span``, copies and pickles as a ModuleHook does)
            root = on["steady"] if mode == "steady" else ModuleHook(on["lean"])
            bn = ModuleHook(on["bn"])
            light = ModuleHook(on["light"]) if mode == "light" else None
            for entry in self.models:
                m = entry.module()
                if m is None:
                    continue
                hs.append(root_hook(m, root, [e.module() for e in self.models],
                                     self.guard))
                if mode != "steady":
                    for sub in m.modules():  # point 12 sees every batch a BatchNorm gets
                        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                            hs.append(sub.register_forward_pre_hook(bn))
                        elif light is not None and isinstance(sub, LIGHT_TYPES):
                            hs.append(sub.register_forward_hook(light))
        if mode != "steady":
            hs += [register_optimizer_step_pre_hook(on["opt_pre"]),
                   register_optimizer_step_post_hook(on["opt_post"])]
        self._handles = [self.patches.handle(h) for h in hs]
        self.patches.set_steady(mode == "steady")

    def watch_updates(self) -> None:
        """A steady step whose update must be seen (the one before a sampled step): the
        optimizer step hooks too, until the next ``set``."""
        on = self.on
        self._handles += [self.patches.handle(register_optimizer_step_pre_hook(on["opt_pre"])),
                          self.patches.handle(register_optimizer_step_post_hook(on["opt_post"]))]

    def drop(self) -> None:
        """Forget the handles (``Patches.remove_all`` removes them)."""
        self._handles = []
