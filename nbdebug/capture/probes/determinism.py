"""Eval determinism: the same held-out batch run twice in eval mode must give the same
outputs (``train-eval-mode``, check ``eval-determinism``).

When a watched model is switched to eval mode, a forward hook (with the call's keyword
arguments) goes on its root; the first forward after it with gradients off runs the
model once more on the same inputs, right after the user's forward returned, under
``rerun.isolated`` (nbdebug's hooks inert, RNG states, buffers and the modules'
attributes put back), as soon as it costs at most 1% of the run so far (the user's forward
is timed; a later held-out forward of a longer run, otherwise). The two outputs are compared on the device (the numbers reach the
host at the next flush). Only when that second forward drew random numbers does a third
one run under ``rerun.RandomCalls`` to name the operation, its line and the module that
made it. One check per model and run; the hook comes off after it (and at
``model.train()``), so training steps never meet it.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from ... import keys
from .. import rerun
from ..models import ModelEntry
from ..rootcall import compiled
from ..sampling import SAMPLED_BUDGET
from .base import Probe

#: forwards with gradients on (or in train mode) the eval hook lets pass before it comes off
MISSES = 3
#: the second forward, with its isolation, costs about this many of the user's forward:
#: it runs once that stays within the sampled steps' budget of the run so far
RERUN_COST = 2.0


class DeterminismProbe(Probe):
    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._patches: Any = None
        self._guard: Any = None
        #: id(root) -> [hook handle, misses]
        self._hooks: dict[int, list[Any]] = {}
        self._done: set[int] = set()

    def attach(self, patches: Any, guard: Any) -> None:
        self._patches, self._guard = patches, guard
        # kept on steady steps: called at mode changes, not every step
        patches.wrap(nn.Module, "train", guard, steady=True, before=self._mode_change)

    def _mode_change(self, args: tuple, kwargs: dict) -> None:
        if not args:
            return
        module = args[0]
        entry = self.ctx.models.root(module)
        if entry is None:
            return
        mode = args[1] if len(args) > 1 else kwargs.get("mode", True)
        if mode is not False:
            self._unhook(module)
        elif id(module) not in self._done and id(module) not in self._hooks:
            g = self._guard
            pre = module.register_forward_pre_hook(g.hook(self._on_input, "eval"))
            post = module.register_forward_hook(g.hook(self._on_output, "eval"),
                                                with_kwargs=True)
            self._hooks[id(module)] = [self._patches.handle(pre), self._patches.handle(post),
                                       0, None]

    def _unhook(self, module: nn.Module) -> None:
        held = self._hooks.pop(id(module), None)
        if held is not None:
            self._patches.remove(held[0])
            self._patches.remove(held[1])

    def _on_input(self, module: nn.Module, args: tuple) -> None:
        held = self._hooks.get(id(module))
        if held is not None:
            held[3] = time.perf_counter()

    def _on_output(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        entry = self.ctx.models.root(module)
        held = self._hooks.get(id(module))
        if entry is None or held is None:
            return
        if torch.is_grad_enabled() or module.training:
            held[2] += 1
            if held[2] >= MISSES:
                self._unhook(module)
            return
        now = time.perf_counter()
        took = now - (held[3] or now)
        if RERUN_COST * took > SAMPLED_BUDGET * (now - self.ctx.started):
            return      # not yet affordable: a later held-out forward, when the run is longer
        self._unhook(module)
        self._done.add(id(module))
        self._check(entry, module, args, kwargs, output)

    def _check(self, entry: ModelEntry, module: nn.Module, args: tuple, kwargs: dict,
               output: Any) -> None:
        loader = self.ctx.loader
        facts: dict[str, Any] = {"model": entry.info.name, "step": self.ctx.step,
                                 "loader": loader.name if loader is not None else None}
        self.ctx.obs.extra.setdefault(keys.EVAL_DETERMINISM, []).append(facts)
        first = rerun.floats(output)
        skip = self._why_not(module, first)
        if skip:
            facts["skipped"] = skip
            return
        names = self._namer(entry)
        try:
            with rerun.isolated(module, names, self.ctx.guard) as iso:
                second = module(*args, **kwargs)
        except Exception as exc:
            facts["skipped"] = f"the second forward raised {type(exc).__name__}"
            return
        facts.update(rng_used=iso.rng_used, buffers=[], state=iso.state[:8],
                     dtype=str(first[0].dtype).replace("torch.", ""))
        self._buffers(facts, iso)
        value = rerun.difference(first, rerun.floats(second))
        del second
        if value is None:
            facts["mismatch"] = True
        else:
            def sink(step: int, arr: Any) -> None:
                facts["max_diff"], facts["scale"] = float(arr[0]), float(arr[1])
            self.ctx.put(value, sink)
        if iso.rng_used:
            facts["random_calls"] = self._name_random(module, names, args, kwargs)

    def _buffers(self, facts: dict[str, Any], iso: rerun.Isolation) -> None:
        """The buffers the second forward changed (the rest are told by device flags at
        the next flush), running statistics before counters."""
        def add(infos: list[dict[str, Any]]) -> None:
            merged = facts["buffers"] + infos
            merged.sort(key=lambda b: b["buffer"] == "num_batches_tracked")
            facts["buffers"] = merged[:8]
        add(list(iso.buffers))
        by_device: dict[Any, list[tuple[dict[str, Any], torch.Tensor]]] = {}
        for info, flag in iso.pending:
            by_device.setdefault(flag.device, []).append((info, flag))
        for group in by_device.values():
            def sink(step: int, arr: Any, group: Any = group) -> None:
                add([info for (info, _), hit in zip(group, list(arr.reshape(-1))) if hit])
            self.ctx.put(torch.stack([f for _, f in group]).float(), sink)

    def _why_not(self, module: nn.Module, first: list[torch.Tensor]) -> str | None:
        if not first:
            return "no floating output"
        if compiled(module):
            return "a compiled model (a second forward could compile again)"
        if type(module).__module__.startswith(("torch.nn.parallel", "torch.distributed")) or (
                torch.distributed.is_available() and torch.distributed.is_initialized()):
            return "a distributed model (a second forward could run collectives)"
        if any(d.type not in ("cpu", "cuda") for d in rerun.devices_of(module)):
            return "a device whose RNG nbdebug does not restore"
        if rerun.user_hooks(module):
            return "the model has forward hooks of its own"
        if rerun.buffer_bytes(module) > rerun.MAX_BUFFER_BYTES:
            return "buffers too large to copy"
        return None

    def _namer(self, entry: ModelEntry) -> Any:
        """A module's name: its qualified name, or for a module the model does not hold
        as a submodule (a plain list or dict attribute), "<type> in <the module that
        called it>"."""
        def name(m: nn.Module, stack: list[nn.Module]) -> str:
            known = entry.names.get(id(m))
            if known is not None:
                return known
            parent = next((entry.names[id(p)] for p in reversed(stack)
                           if id(p) in entry.names), entry.info.name)
            return f"{type(m).__name__} in {parent}"
        return name

    def _name_random(self, module: nn.Module, names: Any, args: tuple,
                     kwargs: dict) -> list[dict[str, Any]]:
        """A third forward, under ``RandomCalls``: which operations drew random numbers."""
        registered = {id(m) for m in module.modules()}
        try:
            with rerun.isolated(module, names, self.ctx.guard) as iso:
                def describe(m: nn.Module | None) -> dict[str, Any]:
                    m = module if m is None else m
                    return {"module": names(m, iso.stack[:-1]), "type": type(m).__name__,
                            "training": m.training, "registered": id(m) in registered}
                recorder = rerun.RandomCalls(iso.stack, describe)
                with recorder:
                    module(*args, **kwargs)
        except Exception:
            return []
        return recorder.calls
