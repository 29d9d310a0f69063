"""Freeze intent: which parameters are frozen (``requires_grad=False``) at the first step,
at each full sample and each flush while any is frozen, and at the end, and whether they
changed in between: a parameter frozen yet stepped by an optimizer (a gradient left in
``.grad`` from before the freeze), or frozen only after the first steps had updated it.
One fused norm per model at each of those points; nothing on ordinary steps."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ... import keys
from ..models import ModelEntry, opt_params
from .base import Probe, foreach_norm

#: relative change of a parameter's norm that counts as changed (float noise is far below)
CHANGED = 1e-6


class FreezeProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        #: id(entry) -> (requires_grad flags, norms) of the last look
        self._prev: dict[int, tuple[list[bool], list[float]]] = {}
        self._names: dict[int, list[str]] = {}
        self._frozen_seen: set[int] = set()

    def first_forward(self, entry: ModelEntry, module: nn.Module) -> None:
        self._look(entry, module)

    def step_end(self, record: Any) -> None:
        if self.ctx.full and self.ctx.sampled:      # a full sample (flushes can be far apart)
            self._look_frozen()

    def flush(self) -> None:
        self._look_frozen()

    def _look_frozen(self) -> None:
        """A look at each model that has (or had) a frozen parameter."""
        for entry in self.ctx.models:
            module = entry.module()
            if module is not None and id(entry) in self._names and (
                    id(entry) in self._frozen_seen
                    or not all(p.requires_grad for p in module.parameters())):
                self._look(entry, module)

    def closing(self) -> None:
        for entry in self.ctx.models:
            module = entry.module()
            if module is not None and id(entry) in self._names:
                self._look(entry, module)

    def _look(self, entry: ModelEntry, module: nn.Module) -> None:
        named = [(n, p) for n, p in module.named_parameters()
                 if not isinstance(p, nn.parameter.UninitializedParameter)]
        names = [entry.param_names.get(id(p), n) for n, p in named]
        if not named or self._names.setdefault(id(entry), names) != names:
            return                        # (parameters added meanwhile: not comparable)
        flags = [p.requires_grad for _, p in named]
        if not all(flags):
            self._frozen_seen.add(id(entry))
        held = {id(p) for ref, _ in self.ctx.optimizers.values() if (o := ref()) is not None
                for p in opt_params(o)}
        stepped = [id(p) in held for _, p in named]
        with torch.no_grad():
            norms = foreach_norm([p.detach() for _, p in named])
        key = id(entry)
        self.ctx.put(norms, lambda s, a: self._compare(key, flags, stepped, a))

    def _compare(self, key: int, flags: list[bool], stepped: list[bool],
                 values: np.ndarray) -> None:
        norms = np.asarray(values, dtype=float).reshape(-1).tolist()
        prev = self._prev.get(key)
        self._prev[key] = (flags, norms)
        if prev is None:
            return
        before, old = prev
        if all(before) and all(flags):
            return
        out = self.ctx.obs.extra.setdefault(
            keys.FREEZE, {"frozen_changed": [], "frozen_late": [], "unfrozen": []})
        for name, was, now, held, a, b in zip(self._names[key], before, flags, stepped,
                                              old, norms):
            changed = abs(b - a) > CHANGED * max(abs(a), 1e-12)
            if not was and not now and changed and held:
                _add(out["frozen_changed"], name)
            elif was and not now and changed:
                _add(out["frozen_late"], name)
            elif not was and now:
                _add(out["unfrozen"], name)
        if not all(flags) or not all(before):
            out.setdefault("checked", True)


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)
