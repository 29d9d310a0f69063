"""A forward hook on a model's root without torch's hooked call path.

A module with a forward hook takes ``Module._call_impl``'s slow path: about 12 k
instructions a call on a small model's training step, and more of the step's caches than
any body of nbdebug's. The lean and steady steps hook each model's root; ``RootCall`` hooks
it through torch's own seam for a compiled call instead, where the model allows it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn


class RootCall:
    """A forward hook on a model's root, called by torch's own seam for a compiled call
    (``Module._compiled_call_impl``, which ``Module.__call__`` calls instead of
    ``_call_impl`` when set): the module's call runs as without nbdebug (its own hooks
    included), then ``hook(module, args, output)``. Torch drops the seam when a module is
    copied or pickled (``root_hook`` takes no other module); a copy of the seam alone is
    None, torch's default, so that no copy ever runs the original. While torch compiles a
    call, the hook stays out of the graph. ``counter.root_calls`` counts the hook's calls.
    ``remove`` puts back what was there."""

    def __init__(self, module: nn.Module, hook: Callable[..., Any], counter: Any) -> None:
        self.module, self.hook, self.counter = module, hook, counter
        self.impl = module._call_impl
        self.had = "_compiled_call_impl" in vars(module)
        vars(module)["_compiled_call_impl"] = self      # (past any __setattr__ of its class)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        out = self.impl(*args, **kwargs)
        if not _compiling():
            self.counter.root_calls += 1
            self.hook(self.module, args, out)
        return out

    def remove(self) -> None:
        state = vars(self.module)
        if state.get("_compiled_call_impl") is self:
            if self.had:
                state["_compiled_call_impl"] = None
            else:
                del state["_compiled_call_impl"]

    def __deepcopy__(self, memo: dict) -> None:
        return None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_none, ())


def _none() -> None:
    return None


def _never() -> bool:
    return False


def _seam() -> bool:
    """Whether this torch has the seam (2.2 and later): ``Module.__call__`` goes through
    ``_compiled_call_impl``, and ``Module.__getstate__`` drops it from copies."""
    if getattr(nn.Module, "_wrapped_call_impl", None) is not nn.Module.__call__:
        return False
    probe = nn.Module()
    vars(probe)["_compiled_call_impl"] = _never
    return "_compiled_call_impl" not in probe.__getstate__()


#: (read once: the seam is used only where torch has it)
SEAM = _seam()
_compiling: Callable[[], bool] = getattr(
    torch.compiler, "is_compiling", getattr(torch._dynamo, "is_compiling", _never))


def root_hook(module: nn.Module, hook: Callable[..., Any], models: Iterable[Any],
              counter: Any) -> Any:
    """A forward hook on ``module``, a model's root: a ``RootCall`` (its calls counted on
    ``counter``) where the seam is free and safe, else torch's. Returns what removes it.

    Free: this torch has the seam (``SEAM``), the class calls as ``nn.Module`` does, and nothing else uses the seam (a
    compiled module, one that ``torch.compile`` wraps, a scripted one). Safe: the class
    copies and pickles through ``nn.Module.__getstate__``, which drops the seam (a class
    with a copy or pickle protocol of its own could hand a copy the original's seam: a
    shallow copy would then run the original), and no other of ``models`` holds it (an
    ``nn.DataParallel`` copies its module's ``__dict__`` into each replica)."""
    cls = type(module)
    if (SEAM and _free(module, cls) and cls.__getstate__ is nn.Module.__getstate__
            and cls.__reduce_ex__ is object.__reduce_ex__ and cls.__reduce__ is object.__reduce__
            and not hasattr(cls, "__copy__") and not hasattr(cls, "__deepcopy__")
            and not any(m is not None and m is not module
                        and any(sub is module for sub in m.modules()) for m in models)):
        return RootCall(module, hook, counter)
    return module.register_forward_hook(hook)


def _free(module: nn.Module, cls: Any) -> bool:
    return (cls.__call__ is nn.Module.__call__ is nn.Module._wrapped_call_impl
            and cls.__getattribute__ is nn.Module.__getattribute__
            and cls._wrapped_call_impl is nn.Module._wrapped_call_impl
            and cls._call_impl is nn.Module._call_impl
            and vars(module).get("_compiled_call_impl") is None
            and not isinstance(module, torch.jit.ScriptModule))


def compiled(module: nn.Module) -> bool:
    """Whether the user compiled ``module`` (``module.compile()``), or it wraps a module
    that ``torch.compile`` compiles."""
    return hasattr(module, "_orig_mod") or not isinstance(
        getattr(module, "_compiled_call_impl", None), (type(None), RootCall))
