"""Init audits (point 17): the init routines the cell's own code applies before training.

From the start of the diagnosis until the first training forward, ``torch.nn.init``'s
functions and ``Tensor.normal_`` / ``Tensor.uniform_`` are wrapped; a call made from the
user's code (not from torch's own module constructors, whose ``reset_parameters`` inits
every layer) is recorded with the distribution it draws from (its std, or the constant
it sets, computed from its arguments and the tensor's shape: no tensor is read), its line
and the tensor's storage. At the first training forward the wraps come off (nothing is
left on the steps) and each parameter's inits are read in order: a targeted init (a line
that initialised fewer of the model's tensors) that a later, broader routine (a line that
initialised more: ``model.apply(init_weights)``) redrew from another distribution is lost
(``keys.INIT_OVERWRITTEN``). A broad init followed by a targeted one is the usual design
(GPT-2's scaled residual projections) and is not reported.
"""

from __future__ import annotations

import math
import os
import sys
import weakref
from typing import Any

import torch
from torch import nn

from ... import keys
from .. import structure
from ..models import ModelEntry
from .base import Probe

INIT_FUNCTIONS = ("normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
                  "kaiming_uniform_", "kaiming_normal_", "zeros_", "ones_", "constant_",
                  "orthogonal_", "eye_", "dirac_", "sparse_")
TENSOR_METHODS = ("normal_", "uniform_")
#: init calls recorded at most (bounded memory, however large the model)
MAX_RECORDS = 20_000
#: a lost init and the one that replaced it differ when their stds are this far apart
SCALE_APART = 2.0
#: tensors named per finding
NAMED = 6

_NBDEBUG = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TORCH = os.path.dirname(os.path.abspath(torch.__file__))


class InitProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._patches: Any = None
        self._wraps: list[tuple[Any, str, Any]] = []
        #: id(storage) -> (weak reference to the storage, its init calls in order)
        self._records: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
        self._count = 0

    def attach(self, patches: Any, guard: Any) -> None:
        self._patches = patches
        for owner, names, prefix in ((nn.init, INIT_FUNCTIONS, "nn.init."),
                                     (torch.Tensor, TENSOR_METHODS, "Tensor.")):
            for name in names:
                if not hasattr(owner, name):
                    continue
                fn = prefix + name
                wrapper = patches.wrap(owner, name, guard, reentrant=False, scope="init",
                                       after=lambda a, k, r, fn=fn: self._init(fn, a, k))
                self._wraps.append((owner, name, wrapper))

    def _unwrap(self) -> None:
        for owner, name, wrapper in self._wraps:
            self._patches.undo(owner, name, wrapper)
        self._wraps = []

    def _init(self, fn: str, args: tuple, kwargs: dict) -> None:
        t = args[0] if args else kwargs.get("tensor")
        if (not isinstance(t, torch.Tensor) or self._count >= MAX_RECORDS
                or t.device.type == "meta" or not t.numel()):
            return
        frame: Any = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_NBDEBUG):
            frame = frame.f_back
        if frame is None or frame.f_code.co_filename.startswith(_TORCH):
            return                  # torch's own constructors (reset_parameters)
        storage = t.untyped_storage()
        held = self._records.get(id(storage))
        if held is None or held[0]() is not storage:
            held = self._records[id(storage)] = (weakref.ref(storage), [])
        std, const = intended(fn, tuple(t.shape), args[1:], kwargs)
        code = frame.f_code
        held[1].append({"fn": fn, "site": f"{code.co_filename}:{frame.f_lineno}",
                        "where": structure.frame_line(frame),
                        "shape": tuple(t.shape), "offset": t.storage_offset(),
                        "std": std, "const": const})
        self._count += 1

    def first_forward(self, entry: ModelEntry, module: nn.Module) -> None:
        self._unwrap()
        if self._records:
            self._audit(entry, module)

    def finish(self) -> None:
        self._unwrap()
        self._records.clear()

    def _audit(self, entry: ModelEntry, module: nn.Module) -> None:
        inits: list[tuple[str, list[dict[str, Any]]]] = []
        for pname, p in module.named_parameters():
            storage = p.untyped_storage()
            held = self._records.get(id(storage))
            if held is None or held[0]() is not storage:
                continue
            mine = [r for r in held[1]
                    if r["shape"] == tuple(p.shape) and r["offset"] == p.storage_offset()]
            if mine:
                inits.append((structure.qualify(entry.info.name, pname), mine))
        breadth: dict[str, int] = {}
        for _, recs in inits:
            for site in {r["site"] for r in recs}:
                breadth[site] = breadth.get(site, 0) + 1
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for name, recs in inits:
            last = recs[-1]
            lost = [r for r in recs[:-1] if r["site"] != last["site"]
                    and breadth[r["site"]] < breadth[last["site"]] and apart(r, last)]
            if not lost:
                continue
            first = lost[-1]
            group = groups.setdefault((first["site"], last["site"]), {
                "lost": _plain(first), "final": _plain(last), "tensors": [],
                "lost_breadth": breadth[first["site"]],
                "final_breadth": breadth[last["site"]]})
            group["tensors"].append(name)
        if groups:
            self.ctx.obs.extra.setdefault(keys.INIT_OVERWRITTEN, []).extend(groups.values())


def _plain(r: dict[str, Any]) -> dict[str, Any]:
    return {"fn": r["fn"], "where": r["where"], "std": r["std"], "const": r["const"]}


def apart(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two inits draw from clearly different distributions (unknown ones never do)."""
    if a["const"] is not None or b["const"] is not None:
        known = (a["const"], a["std"]) != (None, None) and (b["const"], b["std"]) != (None, None)
        return known and a["const"] != b["const"]
    if not a["std"] or not b["std"]:
        return False
    return max(a["std"], b["std"]) >= SCALE_APART * min(a["std"], b["std"])


def intended(fn: str, shape: tuple[int, ...], args: tuple, kwargs: dict
             ) -> tuple[float | None, float | None]:
    """(std, None) of the distribution an init draws from, (None, value) for a constant
    init, (None, None) when unknown. Read from the call's arguments, never the tensor."""
    name = fn.rsplit(".", 1)[-1]
    method = fn.startswith("Tensor.")

    def arg(i: int, key: str, default: Any) -> Any:
        value = args[i] if len(args) > i else kwargs.get(key, default)
        return float(value) if isinstance(value, (int, float)) else None

    fan_in, fan_out = _fans(shape)
    gain = arg(0, "gain", 1.0)
    if name == "normal_":
        return arg(1, "std", 1.0), None
    if name == "uniform_":
        a, b = arg(0, "from" if method else "a", 0.0), arg(1, "to" if method else "b", 1.0)
        return (None if a is None or b is None else abs(b - a) / math.sqrt(12)), None
    if name == "trunc_normal_":
        return _truncated(arg(0, "mean", 0.0), arg(1, "std", 1.0), arg(2, "a", -2.0),
                          arg(3, "b", 2.0)), None
    if name in ("zeros_", "ones_", "constant_"):
        return None, {"zeros_": 0.0, "ones_": 1.0}.get(name, arg(0, "val", None))
    if fan_in is None or gain is None:
        return None, None
    if name.startswith("xavier_"):
        return gain * math.sqrt(2.0 / (fan_in + fan_out)), None
    if name.startswith("kaiming_"):
        a, mode = arg(0, "a", 0.0), args[1] if len(args) > 1 else kwargs.get("mode", "fan_in")
        act = args[2] if len(args) > 2 else kwargs.get("nonlinearity", "leaky_relu")
        try:
            g = nn.init.calculate_gain(act, a)
        except Exception:
            return None, None
        return g / math.sqrt(fan_out if mode == "fan_out" else fan_in), None
    if name == "orthogonal_":
        return gain / math.sqrt(max(shape[0], math.prod(shape) // shape[0])), None
    if name == "sparse_":
        sparsity, std = arg(0, "sparsity", None), arg(1, "std", 0.01)
        return (None if sparsity is None or std is None
                else std * math.sqrt(max(1.0 - sparsity, 0.0))), None
    return None, None


def _fans(shape: tuple[int, ...]) -> tuple[int | None, int]:
    if len(shape) < 2:
        return None, 0
    field = math.prod(shape[2:])
    return max(shape[1] * field, 1), max(shape[0] * field, 1)


def _truncated(mean: float | None, std: float | None, a: float | None,
               b: float | None) -> float | None:
    """The std of a normal(mean, std) cut to [a, b]."""
    if None in (mean, std, a, b) or not std or std <= 0 or b <= a:  # type: ignore[operator]
        return None
    lo, hi = (a - mean) / std, (b - mean) / std      # type: ignore[operator]

    def pdf(x: float) -> float:
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))
    z = cdf(hi) - cdf(lo)
    if z <= 1e-12:
        return None
    var = 1 + (lo * pdf(lo) - hi * pdf(hi)) / z - ((pdf(lo) - pdf(hi)) / z) ** 2
    return std * math.sqrt(max(var, 0.0))
