"""Evidence for the before-training audits, recorded from the first steps.

Called from small call sites in ``core.Capture``: the batch size reaching each BatchNorm
in training mode, the batch sizes and an order fingerprint of the training inputs, and
the distribution checks of KL-divergence calls. Shapes are host integers; every tensor
value stays on its device and reaches the host through the ``Pending`` buffer.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import keys
from ..observations import LossCall, Observations
from ..stats import Pending

#: training batches fingerprinted: enough to see two epochs of a small data set repeat
FINGERPRINT_BATCHES = 512
#: a steady span's inputs are fingerprinted a stack at a time, of at most this many bytes
STACK_BYTES = 2**20
#: kl_div calls whose inputs and targets are checked as distributions
KL_CALLS = 20


class AuditRecorder:
    def __init__(self, obs: Observations, pending: Pending) -> None:
        self.obs = obs
        self.pending = pending
        self._model: int | None = None    # the first model that trained: its inputs count
        self._inputs = 0                  # training inputs of that model seen so far

    def module_input(self, names: dict[int, str], module: nn.Module, args: tuple) -> None:
        """A submodule starts a training forward: note the batch size a BatchNorm gets."""
        if not isinstance(module, nn.modules.batchnorm._BatchNorm) or not module.training:
            return
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        name = names.get(id(module))
        if x is None or name is None or x.dim() < 2:
            return
        sizes = self.obs.batchnorm_batches.setdefault(name, {})
        n = int(x.shape[0])
        sizes[n] = sizes.get(n, 0) + 1

    def model_input(self, model: int, x: torch.Tensor, step: int,
                    epoch_batches: int | None = None) -> None:
        """A training input of the root model: its batch size and an order fingerprint.

        ``epoch_batches``, the length of the loader the batch came from when known, bounds
        the fingerprints: two epochs show a repeated order, and an epoch longer than half
        of FINGERPRINT_BATCHES could not show one at all.
        """
        v = self._counted(model, x, epoch_batches)
        if v is not None:
            self._fingerprint(step, [v])

    def model_inputs(self, model: int, inputs: list[tuple[int, torch.Tensor]],
                     epoch_batches: int | None = None) -> None:
        """``model_input`` of each of a steady span's inputs, (step, x): each run of
        inputs of one shape fingerprinted at once (one stack of at most STACK_BYTES, one
        reduction); past the fingerprinted ones, only their batch sizes are counted."""
        limit = _limit(epoch_batches)
        run: list[torch.Tensor] = []
        first = i = 0
        while i < len(inputs) and not (self._inputs >= limit and model == self._model):
            step, x = inputs[i]
            i += 1
            v = self._counted(model, x, epoch_batches)
            if v is None:
                continue
            if run and (v.shape != run[0].shape or v.dtype != run[0].dtype
                        or v.device != run[0].device
                        or (len(run) + 1) * v.numel() * v.element_size() > STACK_BYTES):
                self._fingerprint(first, run)
                run = []
            if not run:
                first = step
            run.append(v)
        if run:
            self._fingerprint(first, run)
        if i < len(inputs):                     # past the fingerprints: batch sizes only
            rest = [x.shape[0] for _, x in inputs[i:] if x.dim()]
            sizes = self.obs.train_batch_sizes
            for n, count in collections.Counter(rest).items():
                sizes[n] = sizes.get(n, 0) + count
            self._inputs += len(rest)

    def _counted(self, model: int, x: torch.Tensor,
                 epoch_batches: int | None) -> torch.Tensor | None:
        """Count a training input's batch size; the input to fingerprint, or None."""
        if self._model is None:
            self._model = model
        if model != self._model or x.dim() == 0:
            return None
        n = int(x.shape[0])
        sizes = self.obs.train_batch_sizes
        sizes[n] = sizes.get(n, 0) + 1
        self._inputs += 1
        if self._inputs > _limit(epoch_batches) or x.numel() == 0:
            return None
        v = x.detach()
        if v.dtype == torch.bool or v.is_complex() or v.layout != torch.strided:
            return None
        return v

    def _fingerprint(self, step: int, xs: list[torch.Tensor]) -> None:
        """The order fingerprints of inputs of one shape, in order: one reduction on the
        device (each sample's sum); the host keeps four numbers an input."""
        v = torch.stack(xs) if len(xs) > 1 else xs[0].unsqueeze(0)
        per_sample = (v.sum(dim=tuple(range(2, v.dim()))) if v.dim() > 2
                      else v.to(torch.float64))
        out = self.obs.input_fingerprints
        k, n = per_sample.shape

        def sink(s: int, a: np.ndarray) -> None:
            a = a.reshape(k, n)
            out.extend([float(n), *v] for v in zip(
                a.sum(1).tolist(), np.abs(a).sum(1).tolist(), a[:, 0].tolist()))
        self.pending.put(step, per_sample.reshape(-1), sink)

    def binary_labels(self, input: torch.Tensor, target: Any, step: int) -> None:
        """Per-batch 0/1 label counts of a single-output binary loss (points 6 and 7)."""
        if (not isinstance(target, torch.Tensor) or target.dim() == 0
                or target.numel() != target.shape[0] or input.numel() != target.numel()):
            return                            # multi-label or odd shapes: no class per sample
        series = self.obs.series(keys.LABELS)
        if series.columns is None:
            series.columns = ["0", "1"]
        elif len(series.columns) != 2:
            return                            # a class-index loss already fills the series
        ones = (target.detach().reshape(-1) > 0.5).sum(dtype=torch.float32)
        hist = torch.stack([target.shape[0] - ones, ones])

        def sink(s: int, arr: np.ndarray) -> None:
            counts = arr.tolist()
            if series.steps and series.steps[-1] == s:
                # several calls in one step (a GAN's real/fake terms): one batch of labels
                series.values[-1] = [a + b for a, b in zip(series.values[-1], counts)]
            else:
                series.add(s, counts)
        self.pending.put(step, hist, sink)

    def kl_call(self, call: LossCall, input: torch.Tensor, target: Any, out: torch.Tensor,
                kwargs: dict[str, Any], step: int) -> None:
        """Are the inputs log-probabilities and the targets distributions? (point 20)"""
        if call.calls > KL_CALLS or input.dim() == 0 or not isinstance(target, torch.Tensor):
            return
        log_target = bool(kwargs.get("log_target", False))
        call.extra["log_target"] = log_target
        x = input.detach().float()
        t = target.detach().float()
        dim = -1 if x.dim() <= 3 else 1
        parts = [x.amax(), torch.logsumexp(x, dim).abs().amax()]
        if log_target:
            parts += [t.amax(), torch.logsumexp(t, dim).abs().amax()]
        else:
            parts += [t.amin(), (t.sum(dim) - 1.0).abs().amax()]
        parts.append(out.detach().float().amin())
        keys = ("input_max", "input_lse_dev", "target_extreme", "target_norm_dev", "loss_min")
        extra = call.extra

        def sink(s: int, arr: np.ndarray) -> None:
            for k, v in zip(keys, arr.tolist()):
                if k in ("input_max", "input_lse_dev", "target_norm_dev"):
                    extra[k] = max(extra.get(k, v), v)
                elif k == "target_extreme" and log_target:
                    extra["target_max"] = max(extra.get("target_max", v), v)
                elif k == "target_extreme":
                    extra["target_min"] = min(extra.get("target_min", v), v)
                else:
                    extra[k] = min(extra.get(k, v), v)
        self.pending.put(step, torch.stack(parts), sink)


def _limit(epoch_batches: int | None) -> int:
    """Training inputs fingerprinted: two epochs and a little when two fit in
    FINGERPRINT_BATCHES (an epoch longer than half of it could not show a repeated order
    at all), else FINGERPRINT_BATCHES for a loader of unknown length."""
    if not epoch_batches:
        return FINGERPRINT_BATCHES
    return 2 * epoch_batches + 2 if 2 * epoch_batches <= FINGERPRINT_BATCHES else 0
