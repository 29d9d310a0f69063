"""The shape of a probe: one measurement, told of the events it cares about.

A probe overrides only the events it needs; the dispatcher (``capture.core``) calls each
event on the probes that define it, in registration order, and nothing else. A probe
reads and records through its ``Context`` and never sees another probe's state.

Events (all optional):

- ``attach(patches, guard)``: install the probe's own patches (removed by ``patches``).
- ``model_added(entry, module)``: a model was found.
- ``first_forward(entry, module)``: the first training forward of a model (full step).
- ``train_input(entry, module, args)``: a model's training forward, with its inputs.
- ``layer_input(entry, module, args)``: a submodule starts a training forward (full
  steps; lean steps: BatchNorm layers only).
- ``layer_output(entry, module, name, t, root)``: a leaf's (or the root's) floating output
  in a training forward (full steps).
- ``light_arm(undo)``: the step before a light sample on a steady span (whose patches are
  off): install what the sample reads, and append to ``undo`` a callable that takes it off.
- ``light_output(entry, module, name, t, root)``: a light sample's activation layer's (or
  root's) output (``sampling.LIGHT``: the statistics the run's checks read over time at
  most cost; on a full sampled step ``layer_output`` carries them).
- ``light_update(opt, params, before, on_span)``: a light sample's optimizer step, before
  and after its update (``on_span``: on a steady span, whose steps record no gradients
  otherwise): the update's statistics the checks read over time (gradient norms, update
  ratios).
- ``update_failed(opt)``: a light sample's optimizer step raised (the loop may catch it and
  go on): let go of what was held for its statistics.
- ``eval_forward(entry, module, args, output)``: a model's forward outside training.
- ``eval_loss(fn, input, target)``: a watched loss function called outside training.
- ``train_loss(fn, input, target, kwargs, out)``: a training loss call before the first
  optimizer step (only while a pre-flight waits for it).
- ``backward(t, first)``: ``.backward()`` is called on ``t`` (before autograd runs).
- ``before_update(opt, params, primary)`` / ``after_update(opt, params, primary)``: an
  optimizer step (``before_update`` on full steps only; lean steps see the gradients,
  unchanged by the update, in ``after_update``).
- ``steady_inputs(entry, module, items)`` / ``steady_steps(count)``: the bulk twins of
  ``train_input`` and ``step_end`` for a span of steady steps (``capture.steady``): the
  training forwards it took, as (step, args) (a ``structure.SpanInputs``, which also gives
  each one's first tensor and bytes, made once), and the count of steps it ended. A probe
  that declares ``train_input`` or ``step_end`` in ``STEADY`` defines the twin too
  (``steady_loss(t)``, the loss kept of a backward, for ``backward``).
- ``step_closing()``: a training step is about to be handed to the buffer.
- ``step_end()``: a training step ended (the context's step is the next one).
- ``flush()``: the device values were just copied to the host.
- ``closing()``: the diagnosis ends; the device values are not yet flushed.
- ``finish()``: the diagnosis ends; everything is on the host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:  # pragma: no cover
    from ..context import Context

EVENTS = ("attach", "model_added", "first_forward", "train_input", "layer_input",
          "layer_output", "light_arm", "light_output", "light_update", "update_failed",
          "eval_forward", "backward", "before_update", "after_update", "eval_loss",
          "train_loss", "step_closing", "step_end", "steady_inputs", "steady_steps",
          "flush", "closing", "finish")


class Probe:
    """Base of every probe: holds the context."""

    #: the events it still needs on steady steps (a forward hook on the root and the
    #: backward only): most probes need none, and are not called there at all
    STEADY: frozenset[str] = frozenset()

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx


def foreach_norm(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``torch._foreach_norm``; where DTensors (tensor parallel, FSDP) mix with tensors,
    which it refuses, the norms of the parts this rank holds."""
    try:
        return list(torch._foreach_norm(list(tensors)))
    except RuntimeError:
        return list(torch._foreach_norm(local_parts(tensors)))


def local_parts(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The tensors, each DTensor replaced by the part this rank holds."""
    return [getattr(t, "_local_tensor", t) for t in tensors]
