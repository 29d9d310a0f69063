"""What a probe may read and record, and the guard every hook body runs under.

A probe never sees the dispatcher (``core.Capture``) or another probe: it gets a
``Context`` with the observations, the device buffer, the step being recorded, the
sampling decision of this step, the known models and the training batch's labels, and
it records through it. ``Guard`` gives every hook and wrapper body fault isolation
(invariant 3) and counts nbdebug's own host time.
"""

from __future__ import annotations

import functools
import time
import weakref
from typing import Any, Callable

import torch

from ..errors import ErrorLog
from ..observations import LoaderInfo, Observations, Series
from ..stats import Pending
from .models import Models
from .steps import StepRecord, StepRows


class Guard:
    """Runs nbdebug's hook bodies: errors recorded, never raised; own time counted."""

    def __init__(self, errors: ErrorLog) -> None:
        self.errors = errors
        #: host seconds spent inside nbdebug's hooks and wrappers (its own overhead)
        self.own_seconds = 0.0
        #: while set (nbdebug's own replay of a batch), every hook and wrapper is inert
        self.paused = False
        #: calls of the hooks and of the wrappers (their cost outside the bodies' clocks)
        self.hook_calls = 0
        self.wrap_calls = 0
        #: ... of which calls of a model's root through ``rootcall.RootCall`` (cheaper)
        self.root_calls = 0
        self._inside: dict[str, list[bool]] = {}
        self._running = 0.0         # when the hook running now began (0: none runs)

    def hook(self, fn: Callable[..., Any], where: str | None = None) -> Callable[..., None]:
        """A hook that runs ``fn`` and returns None whatever happens."""
        label = where or fn.__name__.strip("_")

        def hook(*args: Any, **kwargs: Any) -> None:
            self.hook_calls += 1
            if self.paused:
                return None
            t0 = self._running = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except Exception:
                self.errors.record(label)
            finally:
                self.own_seconds += time.perf_counter() - t0
                self._running = 0.0
            return None
        return hook

    def own_now(self) -> float:
        """``own_seconds`` with the hook running now counted so far."""
        running = self._running
        return self.own_seconds + (time.perf_counter() - running if running else 0.0)

    def wrap(self, original: Callable[..., Any], where: str,
             before: Callable[[tuple, dict], Any] | None = None,
             after: Callable[[tuple, dict, Any], Any] | None = None,
             reentrant: bool = True, scope: str | None = None) -> Callable[..., Any]:
        """``original`` with ``before(args, kwargs)`` called before it and ``after(args,
        kwargs, result)`` after it; the call and its result are unchanged. Without
        ``reentrant``, calls made inside an observed call of the same ``scope`` (default:
        ``where``) are not observed again (``Tensor.backward`` calling
        ``torch.autograd.backward``)."""
        guard = self
        # calls made inside an observed call of the same name are not observed again
        inside = self.inside(scope or where)

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            guard.wrap_calls += 1
            if guard.paused or inside[0]:
                return original(*args, **kwargs)
            if before is not None:
                guard._observe(before, where, args, kwargs)
            if not reentrant:
                inside[0] = True
            try:
                result = original(*args, **kwargs)
            finally:
                inside[0] = False
            if after is not None:
                guard._observe(after, where, args, kwargs, result)
            return result

        return wrapper

    def inside(self, scope: str) -> list[bool]:
        """The flag that is set while an observed call of ``scope`` runs (a one-item
        list, shared by the wrappers of that scope)."""
        return self._inside.setdefault(scope, [False])

    def _observe(self, fn: Callable[..., Any], where: str, *args: Any) -> None:
        t0 = time.perf_counter()
        try:
            fn(*args)
        except Exception:
            self.errors.record(where)
        self.own_seconds += time.perf_counter() - t0


class Context:
    """The small world of a probe: read the step's facts, record values and notes."""

    def __init__(self, obs: Observations, pending: Pending, guard: Guard, models: Models,
                 namespace: Callable[[], dict[str, Any]],
                 name_of: Callable[[Any, str], str]) -> None:
        self.obs = obs
        self.pending = pending
        self.guard = guard
        self.errors = guard.errors
        self.models = models
        #: the user's namespace (read only), and the user's name for an object
        self.namespace = namespace
        self.name_of = name_of
        #: the loaders the user named (``--loader``): only these are watched
        self.only_loaders: list[Any] = []
        self.step = 0
        #: this step takes statistics (activations, updates, labels ...)
        self.sampled = True
        #: a probe wants the next step sampled light too (a training accuracy over batches
        #: too small to mean anything alone)
        self.light_more = False
        #: this step hooks every module (discovery, per-layer guards), not only the roots
        self.full = True
        #: the step being recorded (replaced when a step ends)
        self.cur = StepRecord()
        #: ends steps into the buffer; owns the per-name row layouts
        self.rows = StepRows(obs, pending)
        #: the loader that gave the last batch, and that batch's labels (split on demand)
        self.loader: LoaderInfo | None = None
        self._batch: Any = None
        self._labels: torch.Tensor | None = None
        #: the labels are of a batch drawn since the last training step ended
        self.batch_fresh = False
        #: the output of the last forward outside training (eval mode or no grad): a loss
        #: computed on it scores it and trains nothing
        #: (a weak reference: nbdebug keeps no tensor, nor its graph, alive)
        self.eval_output: Callable[[], torch.Tensor | None] = _nothing

        #: the loaders seen so far, by name: their epoch counts close held-out rounds
        self.loaders: list[LoaderInfo] = obs.loaders
        #: the optimizer whose steps are the training's steps (id), once one stepped
        self.primary: int | None = None
        #: the optimizers watched: id -> (weak reference, index in the order first seen)
        self.optimizers: dict[int, tuple[Any, int]] = {}
        #: loaders' lengths (batches per epoch; None for iterable data sets), by
        #: ``id(LoaderInfo)``
        self.epoch_batches: dict[int, int | None] = {}
        #: on a steady step: the optimizers assumed to have stepped (ids), unseen
        self.assumed: tuple[int, ...] = ()
        #: batches left in the training loader's epoch (None: unknown, or no loader)
        self.epoch_left: int | None = None
        #: leave steady steps now (a held-out loader starts iterating, say)
        self.wake: Callable[[], None] = lambda: None
        #: a probe holds as much as it may until the next flush: flush when the step ends
        self.flush_wanted = False
        #: hand the steady span over (before reading the step's state between steps)
        self.sync: Callable[[], None] = lambda: None
        #: ... but keep it going (between steps, as the training loader's epoch begins)
        self.split: Callable[[], None] = lambda: None
        #: tell every probe of an event (the dispatcher's own)
        self.emit: Callable[..., None] = lambda *args: None
        #: when the diagnosis started (perf_counter), and the pre-flight runner, if asked
        self.started = 0.0
        self.preflight: Any = None
        #: the model inputs of the first step, (args, kwargs) (kept for the pre-flight)
        self.first_inputs: list[tuple[tuple, dict]] = []
        self._notes: set[str] = set()

    def held_out(self, output: torch.Tensor | None) -> None:
        self.eval_output = _nothing if output is None else weakref.ref(output)

    def scores_eval(self, input: torch.Tensor) -> bool:
        """Is ``input`` (a loss's input) the last held-out output, or one op away from it?"""
        out = self.eval_output()
        if out is None:
            return False
        if input is out:
            return True
        fn = input.grad_fn
        return fn is not None and out.grad_fn is not None and any(
            f is out.grad_fn for f, _ in fn.next_functions)

    def series(self, key: str) -> Series:
        return self.obs.series(key)

    def put(self, value: torch.Tensor | list[torch.Tensor],
            sink: Callable[[int, Any], None]) -> None:
        """Hold a device value for this step until the flush, then call ``sink``."""
        self.pending.put(self.step, value, sink)

    def note(self, text: str) -> None:
        """A note in the report (each text once)."""
        if text not in self._notes:
            self._notes.add(text)
            self.obs.notes.append(text)

    def error(self, where: str) -> None:
        """Record the exception being handled as an internal error."""
        self.errors.record(where)

    # -- the training batch --------------------------------------------------------
    def set_batch(self, batch: Any, split_now: bool) -> None:
        """The batch a watched loader just gave; its labels are split now or on demand."""
        self.batch_fresh = True
        if split_now:
            from .structure import split_batch
            self._batch, self._labels = None, split_batch(batch)[1]
        else:
            self._batch, self._labels = batch, None

    def forget_batch(self) -> None:
        """The last batch's labels no longer belong to what comes (a batch drawn unseen)."""
        self._batch = self._labels = None
        self.batch_fresh = False

    @property
    def labels(self) -> torch.Tensor | None:
        """The labels of the last batch a watched loader gave (split on first use)."""
        if self._batch is not None:
            from .structure import split_batch
            self._labels = split_batch(self._batch)[1]
            self._batch = None
        return self._labels

    def class_labels(self, out: torch.Tensor,
                     y: torch.Tensor | None = None) -> torch.Tensor | None:
        """The batch's class indices (or ``y``) when they match ``out``'s (N, C) logits."""
        y = self.labels if y is None else y
        if (y is None or out.dim() != 2 or out.shape[1] < 2 or y.dim() != 1
                or y.shape[0] != out.shape[0] or y.device != out.device
                or y.is_floating_point() or y.dtype == torch.bool):
            return None
        return y


def _nothing() -> None:
    return None
