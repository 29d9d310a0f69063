"""Losses: the loss of every step (the loss curve and its NaN guard), which loss ran and
what fed it (point 4: the autograd chain; point 20: KL inputs), the ranges of its inputs
and targets, and the labels of the first and the sampled batches (points 6, 7)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ... import keys
from ...observations import LossCall
from ...stats import label_histogram
from .. import structure
from ..audits import AuditRecorder
from ..patches import user_namespaces
from ..sampling import LABEL_STEPS
from .base import Probe

#: functional losses watched; nn loss modules call these at call time, so both are seen
LOSS_FUNCTIONS = ("cross_entropy", "nll_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "kl_div", "mse_loss", "l1_loss",
                  "smooth_l1_loss", "huber_loss")
INDEX_LOSSES = ("cross_entropy", "nll_loss")
BINARY_LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits")
#: loss calls whose input/target ranges are always recorded
DETAIL_CALLS = 20
#: the unwatched functions, for nbdebug's own use (held-out losses)
ORIGINAL = {name: getattr(F, name) for name in LOSS_FUNCTIONS}


class LossProbe(Probe):
    STEADY = frozenset({"backward"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._namespace = ctx.namespace
        self.audit = AuditRecorder(ctx.obs, ctx.pending)
        self._calls: dict[str, LossCall] = {}

    def attach(self, patches: Any, guard: Any) -> None:
        wrapped = {}
        for name in LOSS_FUNCTIONS:
            original = getattr(F, name)
            wrapped[id(original)] = patches.wrap(
                F, name, guard, after=lambda a, k, out, name=name: self._on_loss(name, a, k, out))
        self._rebind(patches, wrapped)

    def _rebind(self, patches: Any, wrapped: dict[int, Callable[..., Any]]) -> None:
        """Names for a loss function bound before the diagnosis (``loss_fn =
        F.cross_entropy``, ``from torch.nn.functional import cross_entropy``), in the cell's
        namespace and in the user's own modules (a ``helpers.py`` the training imports),
        point at the watched one while the cell runs; ``detach`` puts them back."""
        try:
            spaces = [self._namespace()]
            spaces += [ns for ns in user_namespaces() if ns is not spaces[0]]
            for namespace in spaces:
                for key, value in list(namespace.items()):
                    if (callable(value) and id(value) in wrapped
                            and not str(key).startswith("__")):
                        patches.patch_item(namespace, key, wrapped[id(value)])
        except Exception:
            self.ctx.error("names")

    def backward(self, t: torch.Tensor, first: bool) -> None:
        ctx = self.ctx
        ctx.cur.losses.append(self.steady_loss(t))
        if ctx.obs.backward_calls <= 3:
            ctx.obs.extra.setdefault(keys.LOSS_GRAPH, structure.grad_chain(t))

    @staticmethod
    def steady_loss(t: torch.Tensor) -> torch.Tensor:
        """The loss kept of a backward on ``t``: detached, a float32 scalar."""
        loss = t.detach()
        if loss.dim() != 0:
            loss = loss.float().mean()
        return loss if loss.dtype == torch.float32 else loss.float()

    def _on_loss(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        input = args[0] if args else kwargs.get("input")
        target = args[1] if len(args) > 1 else kwargs.get("target")
        if not (isinstance(input, torch.Tensor) and isinstance(out, torch.Tensor)):
            return
        ctx = self.ctx
        if (not (torch.is_grad_enabled() and out.requires_grad) or ctx.scores_eval(input)
                or self._held_out_batch()):
            ctx.emit("eval_loss", name, input, target)   # (eval mode, with or without grad)
            return
        if ctx.preflight is not None and (ctx.primary is None or ctx.preflight.pending):
            ctx.emit("train_loss", name, input, target, kwargs, out)   # pre-flight's samples
        call = self._calls.get(name)
        if call is None:
            call = self._calls[name] = LossCall(fn=name)
            ctx.obs.losses.append(call)
        call.calls += 1
        if not ctx.full and call.calls > DETAIL_CALLS:
            return            # a lean step: ranges, labels and KL audits are done or sampled
        call.reduction = kwargs.get("reduction", call.reduction or "mean")
        call.input_shape = tuple(input.shape)
        if isinstance(target, torch.Tensor):
            call.target_is_index = not target.is_floating_point()
        if call.calls == 1:
            call.input_chain = structure.grad_chain(input)
        if call.calls <= DETAIL_CALLS or ctx.sampled:
            self._ranges(call, input, target)
        early = ctx.step < LABEL_STEPS or ctx.sampled
        if name == "kl_div":
            self.audit.kl_call(call, input, target, out, kwargs, ctx.step)
        elif name in BINARY_LOSSES and early:
            self.audit.binary_labels(input, target, ctx.step)
        if (name in INDEX_LOSSES and isinstance(target, torch.Tensor) and call.target_is_index
                and input.dim() >= 2 and early):
            classes = int(input.shape[1])
            series = ctx.series(keys.LABELS)
            series.columns = [str(c) for c in range(classes)]
            hist = label_histogram(target, classes)
            ctx.put(hist, lambda s, a: series.add(s, a.tolist()))

    def _held_out_batch(self) -> bool:
        """The batch came from a loader that has not trained while another one has: a
        held-out pass (left in train mode, with gradients on)."""
        loader = self.ctx.loader
        return loader is not None and loader.role != "train" and any(
            ld.role == "train" for ld in self.ctx.obs.loaders)

    def _ranges(self, call: LossCall, input: torch.Tensor, target: Any) -> None:
        parts = list(torch.aminmax(input.detach().float()))
        if isinstance(target, torch.Tensor) and target.numel():
            parts += torch.aminmax(target.detach().float())

        def sink(step: int, arr: np.ndarray) -> None:
            v = arr.tolist()
            call.input_min = v[0] if call.input_min is None else min(call.input_min, v[0])
            call.input_max = v[1] if call.input_max is None else max(call.input_max, v[1])
            if len(v) == 4:
                call.target_min = v[2] if call.target_min is None else min(call.target_min, v[2])
                call.target_max = v[3] if call.target_max is None else max(call.target_max, v[3])
        self.ctx.put(parts, sink)
