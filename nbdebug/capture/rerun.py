"""Run a model's forward once more on the inputs it just had, changing nothing the
training sees (the eval determinism probe).

``isolated`` wraps the second forward: nbdebug's own hooks are inert, gradients are off,
what the forward prints or warns is dropped, the torch (CPU and CUDA), numpy and
``random`` RNG states are put back as they were (and whether the forward drew from them
is kept), every module that runs gets clones of its buffers for the call (the user's
buffers are never written; which clones the forward changed is kept), and each running
module's own attributes are restored if the forward rebound them or changed a list or
dict it holds. ``RandomCalls`` names the random operations a forward makes and the module
that made each.
"""

from __future__ import annotations

import contextlib
import io
import random
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from . import structure

#: the attributes every module has (hooks, parameters, buffers ...): not the user's state
_MODULE_KEYS = frozenset(nn.Module().__dict__)
#: models whose buffers hold more bytes than this are not run again (their clones)
MAX_BUFFER_BYTES = 256 * 2**20

#: operations eval mode is meant to switch off: (name, index of ``training``, its name,
#: its default); ``None``: random whatever the mode (a Bernoulli mask)
MODE_OPS: dict[str, tuple[int, str, bool] | None] = {
    "dropout": (2, "training", True), "dropout1d": (2, "training", True),
    "dropout2d": (2, "training", True), "dropout3d": (2, "training", True),
    "alpha_dropout": (2, "training", True), "feature_alpha_dropout": (2, "training", True),
    "feature_dropout": (2, "train", True), "native_dropout": (2, "train", True),
    "rrelu": (3, "training", False), "bernoulli": None, "bernoulli_": None}
#: operations that draw samples (by design in a VAE, a diffusion model, a sampler)
SAMPLING_OPS = frozenset({
    "rand", "rand_like", "randn", "randn_like", "randint", "randint_like", "randperm",
    "normal", "normal_", "uniform_", "multinomial", "poisson", "exponential_",
    "geometric_", "cauchy_", "log_normal_", "random_", "gumbel_softmax"})
#: random calls named per forward
MAX_CALLS = 8


def _hook_owner(h: Any) -> str:
    fn = getattr(h, "func", h)
    return str(getattr(fn, "__module__", None) or type(fn).__module__ or "")


def user_hooks(root: nn.Module) -> bool:
    """Forward hooks that neither torch (spectral/weight norm) nor nbdebug installed: a
    second forward would run the user's code again, with its side effects."""
    mod = torch.nn.modules.module
    global_hooks = [getattr(mod, n, {}) for n in ("_global_forward_hooks",
                                                  "_global_forward_pre_hooks")]
    hooks = [h for d in global_hooks for h in d.values()]
    for m in root.modules():
        hooks += list(m._forward_hooks.values()) + list(m._forward_pre_hooks.values())
    return any(not _hook_owner(h).startswith(("torch.", "nbdebug.")) for h in hooks)


def buffer_bytes(root: nn.Module) -> int:
    return sum(b.numel() * b.element_size() for b in root.buffers())


def devices_of(root: nn.Module) -> set[torch.device]:
    out = {p.device for p in root.parameters()}
    out.update(b.device for b in root.buffers())
    return out


@dataclass
class Isolation:
    """What the second forward did, and how to undo it."""

    cuda: list[int]
    #: a module's name, given the modules running around it (outermost first)
    names: Callable[[nn.Module, list[nn.Module]], str]
    rng_used: bool = False
    #: the modules whose forward is running, innermost last
    stack: list[nn.Module] = field(default_factory=list)
    #: buffers the forward changed: dicts with the module, buffer, type, mode, registration
    buffers: list[dict[str, Any]] = field(default_factory=list)
    #: buffers whose values may have changed: (as above, a device flag to read later)
    pending: list[tuple[dict[str, Any], torch.Tensor]] = field(default_factory=list)
    #: module attributes the forward rebound or changed in place ("net.rnn.hidden")
    state: list[str] = field(default_factory=list)
    registered: set[int] = field(default_factory=set)
    _seen: set[int] = field(default_factory=set)
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def touch(self, m: nn.Module) -> None:
        """Give ``m`` clones of its buffers and remember its attributes (once)."""
        if id(m) in self._seen:
            return
        self._seen.add(id(m))
        label = self.names(m, self.stack)
        clones = []
        for name, b in list(m._buffers.items()):
            if b is not None:
                c = b.clone()
                m._buffers[name] = c
                clones.append((name, b, c, c._version))
        d = m.__dict__
        keys = [k for k in d if k not in _MODULE_KEYS]
        values = {k: d[k] for k in keys}
        contents = {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in values.items()
                    if type(v) in (list, dict)}

        def undo() -> None:
            for name, original, clone, version in clones:
                info = {"module": label, "buffer": name, "type": type(m).__name__,
                        "training": m.training, "registered": id(m) in self.registered}
                now = m._buffers.get(name)
                if now is not clone or clone._version != version:
                    self.buffers.append(info)
                elif original.numel():
                    # kernels that write running statistics leave the version alone
                    same = clone == original
                    if original.is_floating_point():
                        same |= torch.isnan(clone) & torch.isnan(original)
                    self.pending.append((info, ~same.all()))
                m._buffers[name] = original
            for k in [k for k in d if k not in _MODULE_KEYS and k not in values]:
                self.state.append(f"{label}.{k}")
                del d[k]
            for k, v in values.items():
                if d.get(k, _MISSING) is not v:
                    self.state.append(f"{label}.{k}")
                    d[k] = v
                elif k in contents and _changed(v, contents[k]):
                    self.state.append(f"{label}.{k}")
                    v.clear()
                    v.extend(contents[k]) if isinstance(v, list) else v.update(contents[k])
        self._undo.append(undo)

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


_MISSING = object()


def _changed(now: Any, saved: Any) -> bool:
    if len(now) != len(saved):
        return True
    if isinstance(now, list):
        return any(a is not b for a, b in zip(now, saved))
    return any(k not in saved or saved[k] is not v for k, v in now.items())


@contextlib.contextmanager
def isolated(root: nn.Module, names: Callable[[nn.Module, list[nn.Module]], str],
             guard: Any) -> Iterator[Isolation]:
    """Run the block as nbdebug's own, changing nothing the training sees (module doc);
    ``Isolation.stack`` follows the module forwards in it."""
    cuda = sorted({d.index or 0 for d in devices_of(root) if d.type == "cuda"})
    iso = Isolation(cuda, names, registered={id(m) for m in root.modules()})
    states = _rng_states(cuda)
    mod = torch.nn.modules.module

    def pre(m: nn.Module, args: Any) -> None:
        iso.touch(m)
        iso.stack.append(m)

    def post(m: nn.Module, args: Any, out: Any) -> None:
        if iso.stack and iso.stack[-1] is m:
            iso.stack.pop()

    paused, guard.paused = guard.paused, True
    handles = []
    try:
        for m in root.modules():
            iso.touch(m)
        handles = [mod.register_module_forward_pre_hook(pre),
                   mod.register_module_forward_hook(post, always_call=True)]
        sink = io.StringIO()
        with torch.no_grad(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield iso
    finally:
        for h in handles:
            h.remove()
        try:
            iso.restore()
        finally:
            iso.rng_used = _rng_restore(states, cuda)
            guard.paused = paused


def _rng_states(cuda: list[int]) -> tuple[Any, ...]:
    return (torch.get_rng_state(), [torch.cuda.get_rng_state(i) for i in cuda],
            np.random.get_state(), random.getstate())


def _rng_restore(states: tuple[Any, ...], cuda: list[int]) -> bool:
    """Put the RNG states back; whether the block drew from any of them."""
    cpu, gpus, np_state, py_state = states
    used = not torch.equal(cpu, torch.get_rng_state())
    used |= any(not torch.equal(s, torch.cuda.get_rng_state(i)) for i, s in zip(cuda, gpus))
    now: Any = np.random.get_state()
    used |= not (np.array_equal(now[1], np_state[1]) and now[2] == np_state[2])
    used |= random.getstate() != py_state
    torch.set_rng_state(cpu)
    for i, s in zip(cuda, gpus):
        torch.cuda.set_rng_state(s, i)
    np.random.set_state(np_state)
    random.setstate(py_state)
    return used


class RandomCalls(TorchFunctionMode):
    """Records the random operations made under it, each with the module running it
    (``stack``, innermost last) and the user's line."""

    def __init__(self, stack: list[nn.Module], describe: Callable[[nn.Module | None],
                                                                   dict[str, Any]]) -> None:
        super().__init__()
        self.stack = stack
        self.describe = describe
        self.calls: list[dict[str, Any]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        try:
            kind = _random_kind(name, args, kwargs)
            if kind is not None and len(self.calls) < MAX_CALLS:
                where = structure.user_line()
                if all(c["where"] != where or c["op"] != name for c in self.calls):
                    self.calls.append({"op": name, "kind": kind, "where": where,
                                       **self.describe(self.stack[-1] if self.stack
                                                       else None)})
        except Exception:
            pass
        return func(*args, **kwargs)


def _random_kind(name: str, args: tuple, kwargs: dict) -> str | None:
    """"mode": an operation eval mode should switch off, running with training on;
    "sampling": a draw of random numbers; None: nothing random."""
    if name == "scaled_dot_product_attention":
        p = args[4] if len(args) > 4 else kwargs.get("dropout_p", 0.0)
        return "mode" if isinstance(p, (int, float)) and p > 0 else None
    if name in MODE_OPS:
        spec = MODE_OPS[name]
        if spec is None:
            return "mode"
        at, key, default = spec
        training = args[at] if len(args) > at else kwargs.get(key, default)
        p = args[1] if len(args) > 1 else kwargs.get("p", 0.5)
        if training is True and not (isinstance(p, (int, float)) and p == 0):
            return "mode"
        return None
    return "sampling" if name in SAMPLING_OPS else None




def floats(value: Any) -> list[torch.Tensor]:
    """The floating tensors of a forward's output, in order (tuples, lists, dicts and
    dict-like outputs)."""
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in floats(v)]
    if isinstance(value, dict) or callable(getattr(value, "values", None)):
        try:
            return [t for v in list(value.values()) for t in floats(v)]
        except Exception:
            return []
    return []


def difference(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor | None:
    """On the device: [largest |a - b|, largest |a|] over the pairs (a NaN on one side
    only counts as an infinite difference); None when the outputs do not pair up."""
    if len(a) != len(b) or not a or any(x.shape != y.shape or x.device != y.device
                                        for x, y in zip(a, b)):
        return None
    diffs, scales = [], []
    for x, y in zip(a, b):
        if not x.numel():
            continue
        wide = torch.float64 if x.dtype == torch.float64 else torch.float32
        x, y = x.detach().to(wide), y.detach().to(wide)
        d = (x - y).abs()
        d = torch.where(torch.isnan(x) & torch.isnan(y), torch.zeros_like(d), d)
        diffs.append(torch.nan_to_num(d, nan=float("inf")).max().float())
        scales.append(torch.nan_to_num(x.abs(), nan=0.0, posinf=0.0, neginf=0.0).max().float())
    if not diffs:
        return None
    return torch.stack([torch.stack(diffs).max(), torch.stack(scales).max()])
