"""The pre-flight run: at the first optimizer step, build the context and run the experiments.

Capture owns one ``Preflight`` when ``--preflight`` is on; its probe
(``capture.probes.preflight``) hands it the first training loss call (``loss_seen``) and
calls ``run`` once, at the primary optimizer's first pre-step, with the capture's context
(``capture.context.Context``); every capture hook is paused meanwhile. An experiment that
needs more samples than the first batch holds (the label control) waits: a copy of the
model as it was at init is kept, the next steps' model inputs and loss targets are gathered
(``more``) and it runs at the end of the step that completes them (``later``). Each experiment is fault-isolated:
a failure is a note, never an error in the user's cell. Results go into
``obs.preflight`` (plain data) and the curves into ``obs.timelines``.
"""

from __future__ import annotations

import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Iterator

import torch

from .context import (Batch, Context, Skip, TooFew, copy_model, grad_kind, loss_spec,
                      needs_closure, rng_kept)
from .experiments import EXPERIMENTS, check_output

#: default budget: the smaller of this and EPOCH_SHARE of an estimated epoch ...
MAX_BUDGET = 30.0
EPOCH_SHARE = 0.2
#: ... but never less than this: small runs (an epoch of milliseconds) still get their
#: experiments, which on such models take well under a second
MIN_BUDGET = 5.0
#: training steps an experiment short of samples waits for theirs (then runs with fewer)
MAX_WAIT = 16


@dataclass
class Pending:
    """An experiment waiting for samples: the context with a copy of the model at init."""
    name: str
    fn: Any
    ctx: Context
    seconds: float                    # its share of the budget
    needed: int                       # samples it waits for
    batches: list[Batch]
    loader: Any = None                # the training loader's LoaderInfo, and its passes
    passes: int = 0                   # ... when it began
    args: tuple[Any, ...] | None = None     # this step's first training forward's inputs
    target: torch.Tensor | None = None      # ... and its first loss call's target
    waited: int = 0

    @property
    def samples(self) -> int:
        return sum(b.size for b in self.batches)


class Preflight:
    def __init__(self, budget_s: float | None = None) -> None:
        self.budget_s = budget_s
        self.done = False
        #: the first training loss call: name, its input's shape and last autograd op, the
        #: target, kwargs, the loss value (detached: no autograd graph is kept)
        self._loss: tuple[str, Any, str | None, Any, dict[str, Any], Any] | None = None
        self._other_losses: set[str] = set()
        self._capture: Any = None
        self.pending: Pending | None = None
        self._inputs: tuple[tuple, dict] | None = None

    # -- what capture tells -----------------------------------------------------------
    def loss_seen(self, name: str, input: Any, target: Any, kwargs: dict[str, Any],
                  out: Any, inputs: tuple[tuple, dict] | None = None) -> None:
        """A training loss call before the first step (references, dropped after ``run``),
        or of a step whose samples a waiting experiment gathers."""
        if self.pending is not None:
            if self.pending.target is None and isinstance(target, torch.Tensor):
                self.pending.target = target.detach().clone()
            return
        if self.done:
            return
        if self._loss is None:
            self._loss = (name, tuple(input.shape), grad_kind(input),
                          target.detach() if isinstance(target, torch.Tensor) else target,
                          dict(kwargs), out.detach() if isinstance(out, torch.Tensor) else None)
            # the inputs of the forward that made the loss's input: the last one so far (an
            # earlier forward, such as a lazy model's first call, had another batch)
            self._inputs = inputs
        elif name != self._loss[0]:
            self._other_losses.add(name)

    def run(self, capture: Any, opt: torch.optim.Optimizer) -> None:
        """Run every experiment once (capture suspended); never raises."""
        if self.done:
            return
        self.done = True
        obs = capture.obs
        self._capture = capture
        result: dict[str, Any] = {"ran": [], "skipped": {}, "step": capture.step}
        obs.preflight = result
        t0 = time.perf_counter()
        capture.guard.paused = True
        try:
            ctx = self._context(capture, opt, result)
            if ctx is not None:
                with _sandbox(ctx.device):
                    check_output(ctx)
                    for name, fn in EXPERIMENTS:
                        self._one(name, fn, ctx, result, obs)
                result["notes"] = ctx.notes
                for note in ctx.notes:
                    capture.note(f"pre-flight: {note}")
        except Skip as exc:
            result["skipped"]["all"] = str(exc)
        except Exception:
            result["skipped"]["all"] = "internal error"
            capture.error("preflight")
        finally:
            capture.guard.paused = False
            self._loss = self._capture = self._inputs = None
            result["seconds"] = round(time.perf_counter() - t0, 4)
        for what, why in result["skipped"].items():
            capture.note(f"pre-flight: {what} skipped: {why}")

    # -- an experiment that waits for the samples of the next steps ---------------------
    def _wait(self, name: str, fn: Any, ctx: Context, result: dict[str, Any],
              spent: float, needed: int) -> bool:
        """Keep ``fn`` for later, on a copy of the model as it is now (at init)."""
        if self.pending is not None:
            return False
        try:
            twin = copy_model(ctx.model)
        except Skip:
            return False
        seconds = max(ctx.left() + spent, 0.0)
        self.pending = Pending(name, fn, replace(ctx, model=twin, cache={}, notes=[]),
                               seconds, needed, [ctx.batch], self._capture.loader,
                               _passes(self._capture.loader))
        result.setdefault("waiting", []).append(name)
        return True

    def more(self, args: tuple[Any, ...]) -> None:
        """A training forward's inputs, while an experiment gathers samples."""
        if self.pending is not None and self.pending.target is None:   # the loss's forward
            self.pending.args = tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a
                                      for a in args)

    def later(self, capture: Any) -> None:
        """At the end of a training step: add its samples; run the waiting experiment once
        it has enough, or has waited ``MAX_WAIT`` steps. Never raises."""
        p = self.pending
        if p is None:
            return
        try:
            again = _passes(p.loader) > p.passes   # a second pass repeats the samples
            if p.args is not None and p.target is not None and not again:
                batch = Batch(p.args, {}, p.target)
                if p.batches[0].fits(batch) and _batch_first(p.args, {}, batch.size):
                    p.batches.append(batch)
            p.args = p.target = None
            p.waited += 1
            if p.samples < p.needed and p.waited < MAX_WAIT and not again:
                return
            self.pending = None
            if p.samples < p.needed:
                self._not_run(capture, p, f"the first epoch held {p.samples} training "
                                          f"samples; it needs {p.needed}" if again else
                              f"{MAX_WAIT} steps gave {p.samples} samples; it needs "
                              f"{p.needed}")
            else:
                self._run_later(capture, p)
        except Exception:
            self.pending = None
            capture.error("preflight")

    def _run_later(self, capture: Any, p: Pending) -> None:
        result = capture.obs.preflight
        result["waiting"].remove(p.name)
        ctx = replace(p.ctx, batches=[Batch.cat(p.batches)],
                      deadline=time.perf_counter() + p.seconds)
        self._capture = capture
        capture.guard.paused = True
        t0 = time.perf_counter()
        try:
            with _sandbox(ctx.device):
                self._one(p.name, p.fn, ctx, result, capture.obs)
        finally:
            capture.guard.paused = False
            self._capture = None
            result["seconds"] = round(result.get("seconds", 0.0) + time.perf_counter() - t0, 4)
        if p.name in result:
            gathered = {"step": capture.step - 1, "batches": len(p.batches), "samples": p.samples}
            result[p.name].update(gathered)
            result.setdefault("gathered", {})[p.name] = gathered
        elif p.name in result["skipped"]:
            capture.note(f"pre-flight: {p.name} skipped: {result['skipped'][p.name]}")

    def end(self, capture: Any) -> None:
        """The run ends: an experiment still waiting says why it did not run, and so does
        a pre-flight that never ran."""
        if not self.done and capture.obs.backward_calls:
            self.done = True
            why = ("no optimizer step was seen (the parameters were updated by hand): "
                   "pre-flight trains copies with a fresh optimizer of the user's kind")
            capture.obs.preflight = {"ran": [], "skipped": {"all": why}, "step": None}
            capture.note(f"pre-flight: did not run: {why}")
        p, self.pending = self.pending, None
        if p is not None:
            self._not_run(capture, p, f"the run ended after {p.samples} training samples; "
                                      f"it needs {p.needed}")

    def _not_run(self, capture: Any, p: Pending, why: str) -> None:
        result = capture.obs.preflight
        if not isinstance(result, dict):
            return
        result["waiting"].remove(p.name)
        result["skipped"][p.name] = why
        capture.note(f"pre-flight: {p.name} skipped: {why}")

    # -- the experiments ------------------------------------------------------------
    def _one(self, name: str, fn: Any, ctx: Context, result: dict[str, Any], obs: Any) -> None:
        if ctx.left() <= 0:
            result["skipped"][name] = (f"the time budget ({ctx.budget_s:.1f} s) was spent; "
                                       "give more with --preflight-budget SECONDS")
            return
        t0 = time.perf_counter()
        try:
            out = fn(ctx)
        except TooFew as exc:
            if not self._wait(name, fn, ctx, result, time.perf_counter() - t0, exc.needed):
                result["skipped"][name] = str(exc)
            return
        except Skip as exc:
            result["skipped"][name] = str(exc)
            return
        except Exception as exc:        # invariant 3: recorded, the others still run
            result["skipped"][name] = f"internal error ({type(exc).__name__}: {exc})"[:300]
            self._capture.error(f"preflight {name}")
            return
        curves = out.pop("curves", {})
        out["seconds"] = round(time.perf_counter() - t0, 4)
        result[name] = out
        result["ran"].append(name)
        for key, (columns, rows) in curves.items():
            series = obs.series(f"preflight/{key}")
            series.columns = list(columns)
            for i, row in enumerate(rows):
                series.add(i, row)

    def _context(self, capture: Any, opt: torch.optim.Optimizer,
                 result: dict[str, Any]) -> Context | None:
        """The model, its first batch and the loss, as capture saw them; or skip all."""
        trained = [e for e in capture.models.values()
                   if e.info.training_forwards and e.module() is not None]
        if not trained and needs_closure(opt):
            raise Skip(f"{type(opt).__name__} computes the loss inside its step (a closure): "
                       "pre-flight needs the model, batch and loss before the first step")
        if len(trained) != 1:
            raise Skip("several models train together (a GAN, two networks): pre-flight "
                       "needs one model, one optimizer and one loss" if trained else
                       "no training forward of a model was seen before the first step")
        entry = trained[0]
        model = entry.module()
        params = {id(p) for p in model.parameters()}
        held = [p for g in opt.param_groups for p in g["params"]]
        if not held or not all(id(p) in params for p in held):
            raise Skip("the optimizer's parameters are not the trained model's")
        if len(capture.optimizers) > 1:
            result.setdefault("notes_early", []).append(
                "several optimizers: pre-flight tests the first one to step only")
        if self._loss is None:
            raise Skip("no torch loss function was seen (custom loss arithmetic): the "
                       "experiments need to recompute the loss")
        name, in_shape, in_kind, target, kwargs, out = self._loss
        if not isinstance(target, torch.Tensor) or target.dim() == 0:
            raise Skip(f"the {name} target is not a batch of tensors")
        if self._inputs is None:
            raise Skip("the model's inputs of the first step were not kept")
        args, kw = self._inputs
        if not any(isinstance(v, torch.Tensor) for v in (*args, *kw.values())):
            raise Skip("the model's tensor inputs were not seen (keyword arguments only, as "
                       "in model(**batch), are not kept yet)")
        n = int(target.shape[0])
        if not _batch_first(args, kw, n):
            raise Skip("the model's inputs and the loss target do not share a first "
                       "(batch) dimension (sequence-first inputs?)")
        device = next(model.parameters()).device
        seen = float(out.detach().float().mean()) if isinstance(out, torch.Tensor) else None
        ctx = Context(model=model, optimizer=opt, batches=[Batch(tuple(args), dict(kw),
                                                                 target.detach())],
                      loss=loss_spec(name, kwargs), device=device,
                      budget_s=self._budget(capture), model_name=entry.info.name,
                      seen_loss=seen)
        ctx.notes.extend(result.pop("notes_early", []))
        if self._other_losses:
            ctx.notes.append(f"several losses ({', '.join([name, *sorted(self._other_losses)])}"
                             f"): pre-flight recomputes {name} only")
        ctx.out_shape, ctx.loss_input_kind = in_shape, in_kind
        return ctx

    def _budget(self, capture: Any) -> float:
        if self.budget_s is not None:
            return float(self.budget_s)
        first_step = max(time.perf_counter() - capture.started, 1e-4)
        loader = capture.loader
        per_epoch = capture.epoch_batches.get(id(loader)) if loader is not None else None
        if not per_epoch:
            return MIN_BUDGET
        return max(MIN_BUDGET, min(MAX_BUDGET, EPOCH_SHARE * first_step * per_epoch))


@contextmanager
def _sandbox(device: torch.device) -> Iterator[None]:
    """Where experiments run: the RNG states put back after, gradients on, warnings
    silent (the user saw them from the training)."""
    with rng_kept(device), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _passes(info: Any) -> int:
    """Passes started over a loader (its ``LoaderInfo``; 0 without one)."""
    return 0 if info is None else int(info.epochs)


def _batch_first(args: Any, kwargs: dict[str, Any], n: int) -> bool:
    tensors = [v for v in (*args, *kwargs.values()) if isinstance(v, torch.Tensor) and v.dim()]
    return bool(tensors) and all(t.shape[0] == n for t in tensors)
