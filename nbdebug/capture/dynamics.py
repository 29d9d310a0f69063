"""What the training-dynamics checks need beyond the core timelines.

Per-unit "ever active" masks of ReLU layers (dead units), the saturated share of
sigmoid/tanh outputs, the gradient left over from the previous step when a new backward
starts (gradients never zeroed), calls to ``zero_grad`` and to the gradient clippers, the
train/eval mode of the model at each step and at each held-out pass, and the input
statistics of each held-out loader. Values stay on the device until the next flush.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..stats import Unsupported, feature_moments

if TYPE_CHECKING:  # pragma: no cover
    from .core import Capture

#: ReLU-like modules whose units can die (output exactly 0 for every input)
RELU_TYPES = (nn.ReLU, nn.ReLU6)
#: |tanh| above this counts as saturated (its gradient 1 - y^2 is below 0.02)
TANH_SATURATED = 0.99
#: sigmoid above this or below 1 - this counts as saturated (gradient below 0.01)
SIGMOID_SATURATED = 0.99
#: steps in one dead-unit window: a unit silent over a whole window counts as dead
DEAD_WINDOW = 50
#: held-out batches per loader whose input moments are kept (bounded memory and time)
EVAL_INPUT_BATCHES = 20


class DynamicsWatch:
    def __init__(self, capture: Capture) -> None:
        self.cap = capture
        self.obs = capture.obs
        self._active: dict[str, torch.Tensor] = {}     # current window's per-unit masks
        self._window_start = 0
        self._full_windows = 0
        self._eval_moments: dict[str, list[Any]] = {}  # loader -> [moments, batches]

    def attach(self) -> None:
        p = self.cap.patches
        p.patch(torch.optim.Optimizer, "zero_grad",
                self._count(torch.optim.Optimizer.zero_grad, "zero_grad_calls"))
        p.patch(nn.Module, "zero_grad", self._count(nn.Module.zero_grad, "zero_grad_calls"))
        import torch.nn.utils as nn_utils
        import torch.nn.utils.clip_grad as clip_mod
        for owner in (nn_utils, clip_mod):
            p.patch(owner, "clip_grad_norm_", self._clip(clip_mod.clip_grad_norm_, "norm"))
            p.patch(owner, "clip_grad_value_", self._clip(clip_mod.clip_grad_value_, "value"))

    # -- patches -----------------------------------------------------------------
    def _count(self, original: Any, key: str) -> Any:
        obs, cap = self.obs, self.cap

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not cap.suspended:                 # (pre-flight's own calls are not counted)
                obs.dynamics[key] = obs.dynamics.get(key, 0) + 1
            return original(*args, **kwargs)

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]
        wrapper.__doc__ = original.__doc__
        return wrapper

    def _clip(self, original: Any, kind: str) -> Any:
        watch = self

        def clip(parameters: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(parameters, *args, **kwargs)
            if watch.cap.suspended:
                return out
            try:
                watch._on_clip(kind, args, kwargs, out)
            except Exception:
                watch.cap._error("clip")
            return out

        clip.__wrapped__ = original  # type: ignore[attr-defined]
        clip.__doc__ = original.__doc__
        clip.__name__ = original.__name__
        return clip

    def _on_clip(self, kind: str, args: tuple, kwargs: dict, out: Any) -> None:
        d = self.obs.dynamics
        d["clip_calls"] = d.get("clip_calls", 0) + 1
        key = "max_norm" if kind == "norm" else "clip_value"
        value = args[0] if args else kwargs.get(key)
        if isinstance(value, (int, float)):
            d[f"clip_{key}"] = float(value)
        if kind == "norm" and isinstance(out, torch.Tensor) and out.dim() == 0:
            series = self.obs.series("clip_total_norm")   # the norm before clipping
            self.cap.pending.put(self.cap.step, out.detach().float(),
                                 lambda s, a: series.add(s, float(a)))

    # -- training forwards ---------------------------------------------------------
    def activation(self, module: nn.Module, name: str, t: torch.Tensor) -> None:
        """A leaf module's output on a sampled training step."""
        if isinstance(module, RELU_TYPES) and t.dim() >= 1:
            unit_dim = t.dim() - 1 if t.dim() == 3 else min(1, t.dim() - 1)
            dims = [d for d in range(t.dim()) if d != unit_dim]
            alive = (t.detach() > 0).any(dim=dims[0], keepdim=True) if dims else t.detach() > 0
            for d in sorted(dims[1:], reverse=True):
                alive = alive.any(dim=d, keepdim=True)
            alive = alive.reshape(-1)
            prev = self._active.get(name)
            self._active[name] = alive if prev is None or prev.shape != alive.shape else (
                prev | alive)
        elif isinstance(module, (nn.Tanh, nn.Sigmoid)):
            x = t.detach()
            sat = (x.abs() > TANH_SATURATED) if isinstance(module, nn.Tanh) else (
                (x > SIGMOID_SATURATED) | (x < 1 - SIGMOID_SATURATED))
            series = self.obs.series(f"saturated/{name}")
            self.cap.pending.put(self.cap.step, sat.float().mean(),
                                 lambda s, a: series.add(s, float(a)))

    def end_window(self, final: bool = False) -> None:
        """Close the dead-unit window (every DEAD_WINDOW steps, and at the end)."""
        step = self.cap.step
        if not self._active or (not final and step - self._window_start < DEAD_WINDOW):
            return
        names = list(self._active)
        series = self.obs.series("dead_units")
        if series.columns is None:
            series.columns = []
        for n in names:
            if n not in series.columns:
                series.columns.append(n)
        cols = list(series.columns)
        dead = torch.stack([(~self._active[n]).float().mean() for n in names])
        units = {n: int(self._active[n].numel()) for n in names}
        since = self._window_start

        def sink(s: int, arr: np.ndarray) -> None:
            row = [float("nan")] * len(cols)
            for n, v in zip(names, arr.reshape(-1).tolist()):
                row[cols.index(n)] = v
            series.add(s, row)
            self.obs.dynamics["dead_window"] = {"since": since, "until": s, "units": units}
        full = step - since >= DEAD_WINDOW
        # a final partial window counts only when no full one was seen
        if full or not self._full_windows:
            self.cap.pending.put(step, dead, sink)
        self._full_windows += full
        self._active = {}
        self._window_start = step

    # -- steps -------------------------------------------------------------------
    def before_backward(self) -> None:
        """First backward of a step: the norm of what the gradients already hold."""
        if not self.cap._sampled():
            return
        # (a frozen model, a distillation's teacher say, may keep old gradients: not stale)
        grads = [p.grad.detach() for entry in self.cap.models.values()
                 if (m := entry.module()) is not None for p in m.parameters()
                 if p.requires_grad and p.grad is not None and p.grad.layout == torch.strided]
        series = self.obs.series("stale_grad")
        if not grads:
            series.add(self.cap.step, 0.0)
            return
        # one norm per gradient (one operation); the host adds their squares
        self.cap.pending.put(self.cap.step, list(torch._foreach_norm(grads)),
                             lambda s, a: series.add(s, float(np.sqrt(np.sum(np.square(a))))))

    def on_step(self) -> None:
        """An optimizer step: was each watched model in train mode?"""
        d = self.obs.dynamics
        d["steps_seen"] = d.get("steps_seen", 0) + 1
        for entry in self.cap.models.values():
            m = entry.module()
            if m is not None and entry.info.training_forwards + entry.info.eval_forwards and (
                    not m.training):
                d["steps_in_eval_mode"] = d.get("steps_in_eval_mode", 0) + 1
                d.setdefault("first_eval_mode_step", self.cap.step)
                break

    # -- held-out passes -------------------------------------------------------------
    def eval_forward(self, module: nn.Module, x: Any) -> None:
        """A forward of the root model outside training (no grad, or eval mode)."""
        loader = self.cap.last_loader
        d = self.obs.dynamics
        if not torch.is_grad_enabled() and module.training:
            d["eval_passes_in_train_mode"] = d.get("eval_passes_in_train_mode", 0) + 1
            if loader is not None:
                d.setdefault("train_mode_loaders", [])
                if loader.name not in d["train_mode_loaders"]:
                    d["train_mode_loaders"].append(loader.name)
        elif not module.training:
            d["eval_passes_in_eval_mode"] = d.get("eval_passes_in_eval_mode", 0) + 1
        if loader is None or loader.role == "train" or not isinstance(x, torch.Tensor):
            return
        acc = self._eval_moments.setdefault(loader.name, [None, 0])
        if acc[1] >= EVAL_INPUT_BATCHES or not x.is_floating_point() or x.dim() < 2:
            return
        v = x.reshape(-1, x.shape[-1]) if x.dim() == 3 else x
        try:
            m = feature_moments(v)
        except Unsupported:
            return
        if acc[0] is None:
            acc[0] = m
        elif acc[0].shape == m.shape:
            a = acc[0]
            acc[0] = torch.stack([a[0] + m[0], a[1] + m[1], a[2] + m[2],
                                  torch.minimum(a[3], m[3]), torch.maximum(a[4], m[4])])
        else:
            return
        acc[1] += 1

    def finish(self) -> None:
        from .core import _input_summary
        self.end_window(final=True)
        for name, (moments, batches) in self._eval_moments.items():
            if moments is not None:
                self.obs.eval_inputs[name] = _input_summary(
                    moments.cpu().numpy(), batches, None)
