"""Point 13's finer look: replay the batch that made the first NaN, op by op.

While the cell trains, the engine keeps references to the root model's inputs of the
steps in the current flush window (bounded in bytes) and one copy of the parameters and
buffers taken at the window's first training forward (small models only). When a flush
shows that a forward produced the first NaN/Inf, that batch is run again through
``torch.func.functional_call`` on the copy, under a dispatch mode that checks every
operation's output: the first one with finite inputs and a non-finite output is the
culprit (``log`` of 0, ``div`` by 0, ``exp`` overflow ...). The replay never changes the
training: the model's own tensors are not touched, the RNG state is forked and restored,
no gradient is recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from .structure import SpanInputs, all_tensors, input_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .context import Context, Guard
    from .models import ModelEntry

#: models with more parameter + buffer elements than this are not copied for replays
REPLAY_MAX_ELEMENTS = 20_000_000
#: input bytes kept for replay within one flush window; older steps are dropped beyond it
REPLAY_BYTES = 64 * 2**20
#: ops that only move or view data: a NaN passing through them is not made there
_PASSIVE = {"view", "_unsafe_view", "reshape", "t", "transpose", "permute", "clone", "copy_",
            "detach", "expand", "slice", "select", "unsqueeze", "squeeze", "contiguous",
            "alias", "as_strided", "_to_copy", "cat", "stack", "split", "lift_fresh",
            # uninitialised memory: whatever it holds is not a result
            "empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided",
            "resize_", "set_"}


#: the keyword arguments of a forward called without any (shared: nothing writes them)
_NO_KWARGS: dict[str, Any] = {}


class _FirstNonFinite(TorchDispatchMode):
    """Records the first op whose floating inputs are finite and whose output is not."""

    def __init__(self, modules: list[str]) -> None:
        super().__init__()
        self.modules = modules
        self.found: dict[str, Any] | None = None

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        out = func(*args, **(kwargs or {}))
        if self.found is not None:
            return out
        name = func.overloadpacket.__name__
        if name in _PASSIVE:
            return out
        outs = [t for t in all_tensors(out) if t.is_floating_point() and t.numel()]
        if not outs or all(bool(torch.isfinite(t).all()) for t in outs):
            return out
        ins = [t for t in all_tensors(args) + all_tensors(kwargs or {})
               if t.is_floating_point() and t.numel()]
        if not ins or not all(bool(torch.isfinite(t).all()) for t in ins):
            return out
        detail: dict[str, Any] = {"op": name, "module": self.modules[-1] if self.modules
                                  else None, "inputs": []}
        for t in ins[:3]:
            x = t.detach().float()
            detail["inputs"].append({
                "shape": list(t.shape), "min": float(x.min()), "max": float(x.max()),
                "zeros": int((x == 0).sum()), "negatives": int((x < 0).sum())})
        self.found = detail
        return out


class Replay:
    def __init__(self, ctx: Context, guard: Guard) -> None:
        self.ctx = ctx
        self.guard = guard
        self.done = False
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._snapshot_step: int | None = None
        self._previous: tuple[Any, int | None] = (None, None)
        self._want_snapshot = True
        self._inputs: list[tuple[int, tuple, dict, int]] = []   # step, args, kwargs, bytes
        self._bytes = 0
        self._entry: ModelEntry | None = None

    def remember(self, entry: ModelEntry, module: torch.nn.Module, args: tuple,
                 kwargs: dict | None = None, step: int | None = None) -> None:
        """A training forward of the root model (of ``step``, by default the step in
        progress): keep its inputs (references only)."""
        if self.done:
            return
        if self._want_snapshot and self.ctx.full:   # (steady steps copy nothing)
            state: dict[str, torch.Tensor] = dict(module.named_parameters())
            state.update(module.named_buffers())
            if any(isinstance(t, (torch.nn.parameter.UninitializedParameter,
                                  torch.nn.parameter.UninitializedBuffer))
                   for t in state.values()):
                state = {}                # lazy modules not built yet: the next forward
            else:
                self._want_snapshot = False
            # the window's previous copy stays for the steps before this one
            self._previous = (self._snapshot, self._snapshot_step)
            if not state:
                pass
            elif sum(t.numel() for t in state.values()) <= REPLAY_MAX_ELEMENTS:
                self._snapshot = {k: v.detach().clone() for k, v in state.items()}
                self._snapshot_step = self.ctx.step
                self._entry = entry
            else:
                self._snapshot = None
        size = input_bytes(args)
        self._inputs.append((self.ctx.step if step is None else step, args,
                             dict(kwargs) if kwargs else _NO_KWARGS, size))
        self._bytes += size
        self._bound()

    def remember_span(self, entry: ModelEntry, module: torch.nn.Module,
                      items: SpanInputs) -> None:
        """``remember`` of a steady span's forwards, (step, args), at once."""
        if self.done or not items:
            return
        sizes = items.sizes()
        start = 0
        if self._want_snapshot and self.ctx.full:
            step, args = items[0]               # (its parameters' copy is taken with it)
            self.remember(entry, module, args, step=step)
            start = 1
        self._inputs.extend((step, args, _NO_KWARGS, size)
                            for (step, args), size in zip(items[start:], sizes[start:]))
        self._bytes += sum(sizes[start:])
        self._bound()

    def _bound(self) -> None:
        if self._bytes >= REPLAY_BYTES // 2:   # half full: read the window before it drops
            self.ctx.flush_wanted = True
        while self._bytes > REPLAY_BYTES and len(self._inputs) > 1:
            self._bytes -= self._inputs.pop(0)[3]

    def after_flush(self) -> None:
        """Replay the first forward NaN if one just showed up, then start a new window."""
        try:
            ev = self.ctx.obs.nan
            if ev is not None and not self.done and ev.phase in ("input", "forward", "loss"):
                self.done = True
                ev.detail["replay"] = replay = self._replay(ev.step)
                if replay.get("data_nonfinite") and ev.phase == "forward":
                    ev.phase, ev.where = "input", None     # the batch brought it
                elif ev.detail.get("output_only") and replay.get("module"):
                    ev.where = replay["module"]     # the layer the replay found it in
                elif ev.phase == "loss" and replay.get("op") and replay.get("module"):
                    # a steady step guards its loss only: the replay found the forward op
                    ev.phase, ev.where = "forward", replay["module"]
        finally:
            self._inputs, self._bytes = [], 0
            self._want_snapshot = not self.done
            self._previous = (None, None)
            if self.done:
                self._snapshot = None

    def _replay(self, step: int) -> dict[str, Any]:
        batches = [(a, k) for s, a, k, _ in self._inputs if s == step]
        entry = self._entry
        module = entry.module() if entry is not None else None
        snapshot, taken = self._snapshot, self._snapshot_step
        if taken is not None and taken > step:       # taken after that step: the older one
            snapshot, taken = self._previous
        if not batches or snapshot is None or module is None:
            return {"replayed": False, "why": "the batch or the parameters were not kept"}
        out: dict[str, Any] = {"replayed": True, "params_from_step": taken,
                               "exact": taken == step}
        data = [t for a, k in batches for t in all_tensors(a) + all_tensors(k)
                if t.is_floating_point() and t.layout == torch.strided]   # (not sparse)
        bad = sum(int((~torch.isfinite(t)).sum()) for t in data)
        if bad:
            total = sum(t.numel() for t in data)
            out.update({"data_nonfinite": bad, "data_elements": total})
            return out
        assert entry is not None                    # (module is entry's, and not None)
        names = {id(m): f"{entry.names.get(id(m), '?')} ({type(m).__name__})"
                 for m in module.modules()}
        stack: list[str] = []

        def enter(mod: torch.nn.Module, args: Any) -> None:
            stack.append(names.get(id(mod), "?"))

        def leave(mod: torch.nn.Module, args: Any, output: Any) -> None:
            if stack:
                stack.pop()

        handles = []
        for m in module.modules():
            handles.append(m.register_forward_pre_hook(enter))
            handles.append(m.register_forward_hook(leave))
        devices = sorted({t.device.index or 0 for t in snapshot.values()
                          if t.device.type == "cuda"})
        self.guard.paused = True          # nbdebug's hooks ignore the replay
        try:
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                for args, kwargs in batches:
                    state = {k: v.clone() for k, v in snapshot.items()}
                    mode = _FirstNonFinite(stack)
                    with mode:
                        torch.func.functional_call(module, state, args, kwargs)
                    if mode.found is not None:
                        out.update(mode.found)
                        break
                else:
                    out["reproduced"] = False
        finally:
            self.guard.paused = False
            for h in handles:
                h.remove()
        return out
