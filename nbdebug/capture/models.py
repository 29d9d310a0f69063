"""The models a diagnosis watches: found by their first forward, named once.

A model is the module whose forward starts when no other module's forward is running and
that has parameters (or the one the user named). Each gets an entry with the names of its
submodules and parameters, and every submodule points back to it (a submodule called
alone belongs to its model).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..observations import ModelInfo
from . import structure

#: leaf modules that map finite inputs to finite outputs: they cannot be where a NaN/Inf
#: starts, so the per-step NaN guard skips them (their statistics are still sampled)
FINITE_PRESERVING = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU,
                     nn.GELU, nn.SiLU, nn.Mish, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
                     nn.Tanh, nn.Sigmoid, nn.Softsign, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                     nn.Dropout3d, nn.AlphaDropout, nn.Flatten, nn.Unflatten, nn.Identity,
                     nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
                     nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


@dataclass
class ModelEntry:
    module: weakref.ref
    info: ModelInfo
    names: dict[int, str]             # id(submodule) -> qualified name
    labels: dict[int, str]            # id(submodule) -> "net.3 (Linear)"
    leaves: set[int]
    unguarded: set[int]               # leaves of FINITE_PRESERVING types
    param_names: dict[int, str]
    initialised: bool = False
    optimized: bool = False           # an optimizer in the namespace holds its parameters
    batchnorm: bool = False           # it has BatchNorm layers (their batch sizes matter)

    def live(self) -> nn.Module | None:
        return self.module()


class Models:
    """The watched models, with lookups by module and by parameter."""

    def __init__(self, name_of: Callable[[Any, str], str],
                 namespace: Callable[[], dict[str, Any]]) -> None:
        self._name_of = name_of
        self._namespace = namespace
        self._entries: dict[int, ModelEntry] = {}
        self._owner: dict[int, ModelEntry] = {}
        self._names: dict[tuple[int, ...], tuple[str, ...]] = {}    # by the params' ids
        self._by_param: dict[int, ModelEntry] = {}
        self._alias: dict[int, int] = {}        # id(entry) -> id of its current wrapper

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def root(self, module: nn.Module) -> ModelEntry | None:
        """The entry of ``module`` when it is a watched model itself."""
        return self._entries.get(id(module))

    def owner(self, module: nn.Module) -> ModelEntry | None:
        """The entry of the model ``module`` is part of (itself included)."""
        return self._entries.get(id(module)) or self._owner.get(id(module))

    def add(self, module: nn.Module) -> ModelEntry:
        root_name = self._name_of(module, f"model{len(self._entries)}")
        named = list(module.named_modules())
        entry = ModelEntry(
            module=weakref.ref(module),
            info=structure.describe_model(root_name, module, set()),
            names={id(m): structure.qualify(root_name, n) for n, m in named},
            labels={id(m): f"{structure.qualify(root_name, n)} ({type(m).__name__})"
                    for n, m in named},
            leaves={id(m) for _, m in named if next(iter(m.children()), None) is None},
            unguarded={id(m) for _, m in named if type(m) in FINITE_PRESERVING},
            param_names={id(p): structure.qualify(root_name, n)
                         for n, p in module.named_parameters()})
        params = {id(p) for p in module.parameters()}
        entry.optimized = any(
            isinstance(v, torch.optim.Optimizer)
            and any(id(p) in params for g in v.param_groups for p in g["params"])
            for v in list(self._namespace().values()))
        entry.batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for _, m in named)
        self._entries[id(module)] = entry
        for _, sub in named:            # a submodule called alone belongs to its model
            self._owner.setdefault(id(sub), entry)
        for p in module.parameters():
            self._by_param.setdefault(id(p), entry)
        return entry

    def wrapping(self, module: nn.Module) -> ModelEntry | None:
        """The model a new wrapper holds (a ``DistributedDataParallel`` made again each
        step, say): the same parameters as a watched model. The wrapper then stands for
        that model; only the latest wrapper is kept."""
        first = next(iter(module.parameters()), None)
        entry = self._by_param.get(id(first)) if first is not None else None
        if entry is None or entry.module() is module:
            return None
        old = self._alias.pop(id(entry), None)
        if old is not None:
            self._owner.pop(old, None)
            entry.names.pop(old, None)
            entry.labels.pop(old, None)
        self._alias[id(entry)] = id(module)
        self._owner[id(module)] = entry
        entry.names[id(module)] = entry.info.name
        entry.labels[id(module)] = f"{entry.info.name} ({type(module).__name__})"
        return entry

    def param_name(self, p: torch.Tensor) -> str:
        for entry in self._entries.values():
            name = entry.param_names.get(id(p))
            if name is not None:
                return name
        return f"param{id(p) % 100000}"

    def names_of(self, params: list[torch.Tensor], ids: tuple[int, ...]) -> tuple[str, ...]:
        """The names of the parameters ``ids`` (of ``params``), looked up once per set."""
        names = self._names.get(ids)
        if names is None:
            by_id = {id(p): p for p in params}
            names = self._names[ids] = tuple(self.param_name(by_id[i]) for i in ids)
        return names

    def all_param_names(self) -> dict[int, str]:
        out: dict[int, str] = {}
        for entry in self._entries.values():
            out.update(entry.param_names)
        return out


def opt_params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every parameter an optimizer holds, group by group."""
    return [p for g in opt.param_groups for p in g["params"]]
