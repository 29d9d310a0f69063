"""Capture: finds the model, optimizers, loaders and loss of a cell without being told.

The only layer that touches torch internals. It registers scoped global hooks (module
forward, optimizer step), patches ``Tensor.backward``, the DataLoader iterator and the
functional losses, and records what it sees into ``Observations`` through the device-side
``Pending`` buffer. It never changes a tensor, draws a batch, consumes RNG or keeps an
autograd graph alive.
"""

from __future__ import annotations

import math
import sys
import time
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                   register_optimizer_step_pre_hook)
from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from ..observations import LoaderInfo, LossCall, ModelInfo, NanEvent, Observations  # noqa: F401
from ..stats import (Pending, Unsupported, feature_moments, guard, label_histogram, summarize,
                     summary_row)
from ..stats.summary import SUMMARY
from . import structure
from .audits import AuditRecorder
from .dynamics import DynamicsWatch
from .patches import Patches, user_namespaces
from .replay import Replay

#: leaf modules that map finite inputs to finite outputs: they cannot be where a NaN/Inf
#: starts, so the per-step NaN guard skips them (their statistics are still sampled)
FINITE_PRESERVING = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU,
                     nn.GELU, nn.SiLU, nn.Mish, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid,
                     nn.Tanh, nn.Sigmoid, nn.Softsign, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
                     nn.Dropout3d, nn.AlphaDropout, nn.Flatten, nn.Unflatten, nn.Identity,
                     nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d,
                     nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
#: functional losses watched; nn loss modules call these at call time, so both are seen
LOSS_FUNCTIONS = ("cross_entropy", "nll_loss", "binary_cross_entropy",
                  "binary_cross_entropy_with_logits", "kl_div", "mse_loss", "l1_loss",
                  "smooth_l1_loss", "huber_loss")
INDEX_LOSSES = ("cross_entropy", "nll_loss")
FLUSH_EVERY = 50          # steps between host copies: one transfer per window
FLUSH_SECONDS = 0.5       # with listeners (live views), flush at least this often
INPUT_BATCHES = 20        # training batches whose per-feature input moments are kept
DETAIL_CALLS = 20         # loss calls whose input/target ranges are always recorded
LABEL_STEPS = 20          # training steps whose label histograms are always recorded
FULL_STEPS = 2            # first steps with every module hooked (discovery, execution order)
MAX_ACCUMULATION = 64     # backward calls without an optimizer step before each counts as one
SAMPLED_BUDGET = 0.01     # adaptive sampling: sampled steps' extra cost, share of a step's time
MAX_INTERVAL = 100        # adaptive sampling never samples less often than this


class StopTraining(KeyboardInterrupt):
    """Raised at a step boundary when the user asked to stop (the sidebar's Stop button)."""


@dataclass
class Options:
    every: int = 10
    #: stretch the sampling interval when sampled steps cost more than SAMPLED_BUDGET
    #: of the training's own time (the default; an explicit ``--every`` is kept as given)
    adaptive: bool = False
    models: list[nn.Module] = field(default_factory=list)
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    loaders: list[Any] = field(default_factory=list)


@dataclass
class _Model:
    module: weakref.ref
    info: ModelInfo
    names: dict[int, str]             # id(submodule) -> qualified name
    labels: dict[int, str]            # id(submodule) -> "net.3 (Linear)"
    leaves: set[int]
    unguarded: set[int]               # leaves of FINITE_PRESERVING types
    param_names: dict[int, str]
    initialised: bool = False
    input_moments: torch.Tensor | None = None
    input_batches: int = 0
    input_dtype: str | None = None
    optimized: bool = False           # an optimizer in the namespace holds its parameters
    input_ndim: int | None = None


@dataclass
class _Step:
    guards: list[torch.Tensor] = field(default_factory=list)
    guard_names: list[str] = field(default_factory=list)
    losses: list[torch.Tensor] = field(default_factory=list)
    backward: bool = False
    grads: bool = False
    last_guarded: Any = None
    #: per-parameter rows (key, names, 0-d values) copied with the step's loss and guards
    rows: list[tuple[str, tuple[str, ...], list[torch.Tensor]]] = field(default_factory=list)


class Capture:
    def __init__(self, options: Options, obs: Observations,
                 namespace: Callable[[], dict[str, Any]] | None = None) -> None:
        self.opts = options
        self.obs = obs
        self.obs.every = options.every
        self._namespace = namespace or dict
        self.patches = Patches()
        self.pending = Pending()
        self.audit = AuditRecorder(obs, self.pending)
        self.models: dict[int, _Model] = {}
        self._owner: dict[int, _Model] = {}
        self.optimizers: dict[int, tuple[weakref.ref, int]] = {}
        self.loaders: dict[int, tuple[weakref.ref, LoaderInfo]] = {}
        self._epoch_batches: dict[int, int | None] = {}     # id(LoaderInfo) -> len(loader)
        self._iter_loader: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._last_iter: Callable[[], Any] = lambda: None
        self._last_iter_info: LoaderInfo | None = None
        self.primary: int | None = None
        self.step = 0
        self.cur = _Step()
        self.depth = 0
        self.active: _Model | None = None
        self.active_training = False
        self.recording_order = False
        self.last_loader: LoaderInfo | None = None
        self._batch: Any = None                 # the last training batch, split when needed
        self._labels: torch.Tensor | None = None
        self.backward_step_pending = False
        self._in_backward = False
        self._clones: dict[int, list[torch.Tensor]] = {}
        self._eval: dict[tuple[str, int], list[float]] = {}
        self._eval_reg: dict[tuple[str, int], list[float]] = {}
        self._losses: dict[str, LossCall] = {}
        self._opt_steps: dict[int, int] = {}
        self.errors: list[dict[str, str]] = []
        self._notes: set[str] = set()
        self._t0 = 0.0
        self._last_flush = 0.0
        #: host time spent inside nbdebug's hooks and wrappers (its own overhead)
        self.own_seconds = 0.0
        self._row_index: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._names: dict[tuple[int, ...], tuple[str, ...]] = {}    # by the params' ids
        #: called with the Observations after every flush (live dashboard, sidebar); a
        #: listener that raises is recorded as an internal error and dropped
        self.listeners: list[Callable[[Observations], None]] = []
        #: a live view watches: flush on wall time too (at most every FLUSH_SECONDS)
        self.live = False
        #: set from another thread (the sidebar's Stop button): the next step boundary
        #: raises StopTraining in the user's code
        self.stop_requested = False
        self.watch = DynamicsWatch(self)
        self.replay = Replay(self)
        #: sampling: statistics on steps that are multiples of ``interval``
        self.interval = options.every
        self.sampled = True
        #: "full" steps run global module hooks (discovery, per-layer guards and
        #: statistics); the others hook only the known models' roots ("lean" steps)
        self.full = False
        self._mode_handles: list[Any] = []
        self._sampled_seconds = 0.0       # own time on sampled steps, and their count
        self._sampled_steps = 0
        self._lean_seconds = 0.0          # own time on lean steps, and their count
        self._lean_steps = 0
        self._step_sinks: dict[tuple[Any, ...], StepSink] = {}
        # pre-flight (--preflight): run once at the primary optimizer's first step; while
        # its experiments train copies, every hook and wrapper is a no-op (``suspended``)
        self.preflight: Any = None
        self.suspended = False

    # -- lifecycle ---------------------------------------------------------------
    def attach(self) -> None:
        self._t0 = self._last_flush = self._step_t0 = time.perf_counter()
        p = self.patches
        self._pre_hook = self._guarded(self._pre_forward)
        self._post_hook = self._guarded(self._post_forward)
        self._bn_hook = self._guarded(self._bn_forward)
        self._lean_hook = self._guarded(self._lean_forward)
        self._set_full(True)
        pre_step, post_step = self._guarded(self._pre_step), self._guarded(self._post_step)
        lean_step = self._guarded(self._lean_step)

        def step_pre_hook(opt: Any, args: Any, kwargs: Any) -> None:
            if self.full:                   # lean steps need nothing before the update
                pre_step(opt, args, kwargs)

        def step_post_hook(opt: Any, args: Any, kwargs: Any) -> None:
            (post_step if self.full else lean_step)(opt, args, kwargs)
        p.handle(register_optimizer_step_pre_hook(step_pre_hook))
        p.handle(register_optimizer_step_post_hook(step_post_hook))
        p.patch(torch.Tensor, "backward", self._wrap_backward(torch.Tensor.backward))
        p.patch(torch.autograd, "backward", self._wrap_backward(torch.autograd.backward))
        p.patch(DataLoader, "__iter__", self._wrap_iter(DataLoader.__iter__))
        p.patch(_BaseDataLoaderIter, "__next__", self._wrap_next(_BaseDataLoaderIter.__next__))
        wrapped = {}
        for name in LOSS_FUNCTIONS:
            original = getattr(F, name)
            wrapped[id(original)] = self._wrap_loss(name, original)
            p.patch(F, name, wrapped[id(original)])
        self._rebind_losses(wrapped)
        self.watch.attach()
        for m in self.opts.models:
            self._add_model(m)

    def _rebind_losses(self, wrapped: dict[int, Callable[..., Any]]) -> None:
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
                        self.patches.patch_item(namespace, key, wrapped[id(value)])
        except Exception:
            self._error("names")

    def _set_full(self, full: bool) -> None:
        """Swap the module hooks between full steps (global) and lean steps (roots only)."""
        for h in self._mode_handles:
            self.patches.remove(h)
        self._mode_handles = []
        self.full = full
        p = self.patches
        if full:
            mod = torch.nn.modules.module
            hs = [mod.register_module_forward_pre_hook(self._pre_hook),
                  mod.register_module_forward_hook(self._post_hook, always_call=True)]
        else:
            hs = []
            post, bn = _ModuleHook(self._lean_hook), _ModuleHook(self._bn_hook)
            for entry in self.models.values():
                m = entry.module()
                if m is None:
                    continue
                hs.append(m.register_forward_hook(post))
                for sub in m.modules():      # point 12 sees every batch a BatchNorm gets
                    if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                        hs.append(sub.register_forward_pre_hook(bn))
        self._mode_handles = [p.handle(h) for h in hs]

    def _lean_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """A lean step's view of a model's forward (one hook, after it): what
        ``_pre_forward`` and ``_post_forward`` record for a root, without the per-layer
        guards and statistics."""
        entry = self.models.get(id(module))
        if entry is None:
            return
        if not (torch.is_grad_enabled() and module.training):
            self._eval_input(entry, module, args)
            self._record_eval_output(output)
            return
        entry.info.training_forwards += 1
        self._training_input(entry, module, args)
        t = structure.first_tensor(output)
        if t is not None and t.is_floating_point():
            self._guard_output(entry, module, t)

    def _eval_input(self, entry: _Model, module: nn.Module, args: tuple[Any, ...]) -> None:
        """A forward of a model outside training: a held-out pass."""
        self.watch.eval_forward(module, structure.first_tensor(args))
        entry.info.eval_forwards += 1
        if self.last_loader is not None and self.last_loader.role != "train":
            self.last_loader.eval_passes += 1

    def _training_input(self, entry: _Model, module: nn.Module, args: tuple[Any, ...]) -> None:
        """A training forward of a model: its inputs for the replay and the audits."""
        x = structure.first_tensor(args)
        self.replay.remember(entry, module, args)
        if x is not None:
            self._record_input(entry, x)
            loader = self.last_loader
            self.audit.model_input(id(entry), x, self.step, None if loader is None
                                   else self._epoch_batches.get(id(loader)))

    def _guard_output(self, entry: _Model, module: nn.Module, t: torch.Tensor,
                      value: torch.Tensor | None = None) -> None:
        """The NaN guard of one output (a Sequential's output is its last layer's: once);
        ``value``, when given, is a guard of ``t`` already computed (its summary's sum)."""
        if t is not self.cur.last_guarded:
            self.cur.guards.append(guard(t) if value is None else value)
            self.cur.guard_names.append(entry.labels[id(module)])
            self.cur.last_guarded = t

    def _lean_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        """A lean step's optimizer step (one hook, after it): the gradients are unchanged
        by the update, so their norms are taken here, then the step ends."""
        if id(opt) not in self.optimizers and not self._watch_optimizer(opt):
            return
        self._opt_steps[id(opt)] = self._opt_steps.get(id(opt), 0) + 1
        self._record_grads(self._opt_params(opt))
        if id(opt) == self.primary:
            self.watch.on_step()
            self._end_step()

    def _bn_forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        entry = self._owner.get(id(module))
        if entry is not None and torch.is_grad_enabled():
            self.audit.module_input(entry.names, module, args)

    def detach(self) -> None:
        self._mode_handles = []
        for err in self.patches.remove_all():
            self.errors.append({"where": "detach", "error": err, "traceback": ""})

    def finish(self) -> Observations:
        """Close the last step, flush the device buffers and fill in the names."""
        stages = [("finish step", self._end_last_step), ("finish dynamics", self.watch.finish),
                  ("finish flush", self.pending.flush), ("nan replay", self._replay_nan),
                  ("finish", self._finish_observations)]
        for where, stage in stages:          # one failing stage does not skip the others
            try:
                stage()
            except Exception:
                self._error(where)
        return self.obs

    def _end_last_step(self) -> None:
        if self.cur.backward or self.cur.losses:
            self._end_step(final=True)

    # -- safety ------------------------------------------------------------------
    def _error(self, where: str) -> None:
        tb = traceback.format_exc()
        exc = sys.exc_info()[1]
        if len(self.errors) < 20:
            self.errors.append({"where": where, "traceback": tb,
                                "error": f"{type(exc).__name__}: {exc}" if exc is not None
                                else tb.strip().splitlines()[-1]})

    def note(self, text: str) -> None:
        if text not in self._notes:
            self._notes.add(text)
            self.obs.notes.append(text)

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Invariant 3: an error inside nbdebug is recorded, never raised into the cell."""
        def hook(*args: Any, **kwargs: Any) -> None:
            if self.replay.active or self.suspended:   # nbdebug's own replay / pre-flight
                return None
            t0 = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except Exception:
                self._error(fn.__name__.strip("_"))
            finally:
                self.own_seconds += time.perf_counter() - t0
            return None
        return hook

    # -- models ------------------------------------------------------------------
    def _is_candidate(self, module: nn.Module) -> bool:
        if self.opts.models:
            return False
        if isinstance(module, nn.modules.loss._Loss):
            return False
        return next(iter(module.parameters()), None) is not None

    def _add_model(self, module: nn.Module) -> _Model:
        root_name = self._name_of(module, f"model{len(self.models)}")
        entry = _Model(
            module=weakref.ref(module), info=structure.describe_model(root_name, module, set()),
            names={id(m): structure.qualify(root_name, n) for n, m in module.named_modules()},
            labels={id(m): f"{structure.qualify(root_name, n)} ({type(m).__name__})"
                    for n, m in module.named_modules()},
            leaves={id(m) for m in module.modules() if next(iter(m.children()), None) is None},
            unguarded={id(m) for m in module.modules() if type(m) in FINITE_PRESERVING},
            param_names={id(p): structure.qualify(root_name, n)
                         for n, p in module.named_parameters()})
        params = {id(p) for p in module.parameters()}
        entry.optimized = any(
            isinstance(v, torch.optim.Optimizer)
            and any(id(p) in params for g in v.param_groups for p in g["params"])
            for v in list(self._namespace().values()))
        self.models[id(module)] = entry
        for sub in module.modules():          # a submodule called alone belongs to its model
            self._owner.setdefault(id(sub), entry)
        self.obs.models.append(entry.info)
        return entry

    def _pre_forward(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.depth += 1
        if self.depth != 1:
            if self.active is not None and self.active_training:
                self.audit.module_input(self.active.names, module, args)
            return
        entry = self.models.get(id(module)) or self._owner.get(id(module))
        if entry is None:
            if not self._is_candidate(module):
                return
            entry = self._add_model(module)
        if self.backward_step_pending:
            # with an optimizer around, backward calls accumulate until it steps
            if entry.optimized and len(self.cur.losses) >= MAX_ACCUMULATION:
                entry.optimized = False
                self.note(f"{entry.info.name}: {MAX_ACCUMULATION} backward calls without an "
                          "optimizer step; each backward now counts as a step")
            if not entry.optimized:
                self._end_step()
        self.active = entry
        training = torch.is_grad_enabled() and module.training
        self.active_training = training
        if not training:
            self._eval_input(entry, module, args)
            return
        entry.info.training_forwards += 1
        if not entry.initialised:
            entry.initialised = True
            self.recording_order = True
            self._record_init(entry, module)
        self._training_input(entry, module, args)

    def _post_forward(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.depth = max(0, self.depth - 1)
        entry = self.active
        if entry is None:
            return
        name = entry.names.get(id(module))
        if name is None:
            return
        root = self.depth == 0
        if root:
            self.active = None
            self.recording_order = False
            entry.info.output_kind = structure.output_kind(output)
        if not self.active_training:
            if root:
                self._record_eval_output(output)
            return
        if id(module) not in entry.leaves and not root:
            return
        t = structure.first_tensor(output)
        if t is None or not t.is_floating_point():
            return
        sampled = self._sampled()
        parts = self._put_summary("output" if root else f"act/{name}", t) if sampled else None
        if id(module) not in entry.unguarded:
            try:
                self._guard_output(entry, module, t, parts[1] if parts else None)
            except Exception:
                return
        if self.recording_order and not root:
            entry.info.exec_order.append(name)
        if sampled:
            if not root:
                self.watch.activation(module, name, t)
            if root:
                self._record_train_accuracy(t)

    def _sampled(self) -> bool:
        return self.sampled

    def _put_summary(self, key: str, t: torch.Tensor) -> list[torch.Tensor] | None:
        """Hold the summary of ``t`` for the ``key`` timeline; the parts, or None."""
        try:
            parts = summarize(t)
        except Unsupported as exc:
            self.note(f"{key}: statistics skipped ({exc})")
            return None
        series = self.obs.series(key)
        series.columns = list(SUMMARY)
        n = t.numel()
        # one vector per summary: a window's vectors reach the host in one concatenation,
        # cheaper there than as many 0-d values
        self.pending.put(self.step, torch.stack(parts),
                         lambda step, arr: series.add(step, summary_row(arr, n)))
        return parts

    def _record_init(self, entry: _Model, module: nn.Module) -> None:
        by_name = {p.name: p for p in entry.info.params}
        for pname, p in module.named_parameters():
            info = by_name.get(structure.qualify(entry.info.name, pname))
            if info is None:
                continue
            try:
                value = torch.stack(summarize(p))
            except Unsupported as exc:
                self.note(f"{info.name}: initial statistics skipped ({exc})")
                continue

            def sink(step: int, arr: np.ndarray, info: Any = info, n: int = p.numel()) -> None:
                info.mean, info.std, info.min, info.max, info.absmax = summary_row(
                    arr, n)[:5]
            self.pending.put(self.step, value, sink)

    def _record_input(self, entry: _Model, x: torch.Tensor) -> None:
        if not self.full and entry.input_batches >= INPUT_BATCHES:
            return                              # a lean step after the first batches
        if entry.input_dtype is None:
            entry.input_dtype = str(x.dtype).replace("torch.", "")
            entry.input_ndim = x.dim()
        if self.full and x.is_floating_point() and x.layout == torch.strided:
            # (on lean steps the model's output guards the step, and a replay of the
            # batch tells a NaN that came with the data)
            self.cur.guards.append(guard(x))
            self.cur.guard_names.append("<input>")
        if entry.input_batches >= INPUT_BATCHES or not x.is_floating_point() or x.dim() < 2:
            return
        v = x
        if v.dim() == 3:                      # sequences: (N, T, F) -> features last
            v = v.reshape(-1, v.shape[-1])
        try:
            m = feature_moments(v)
        except Unsupported:
            return
        if entry.input_moments is None:
            entry.input_moments = m
        elif entry.input_moments.shape == m.shape:
            acc = entry.input_moments
            entry.input_moments = torch.stack([
                acc[0] + m[0], acc[1] + m[1], acc[2] + m[2],
                torch.minimum(acc[3], m[3]), torch.maximum(acc[4], m[4])])
        else:
            return
        entry.input_batches += 1

    # -- accuracy ----------------------------------------------------------------
    @property
    def batch_labels(self) -> torch.Tensor | None:
        """The labels of the last batch a watched loader gave (split on first use)."""
        if self._batch is not None:
            self._labels = structure.split_batch(self._batch)[1]
            self._batch = None
        return self._labels

    def _labels_for(self, out: torch.Tensor) -> torch.Tensor | None:
        y = self.batch_labels
        if (y is None or out.dim() != 2 or out.shape[1] < 2 or y.dim() != 1
                or y.shape[0] != out.shape[0] or y.device != out.device
                or y.is_floating_point() or y.dtype == torch.bool):
            return None
        return y

    def _record_train_accuracy(self, out: torch.Tensor) -> None:
        y = self._labels_for(out)
        if y is None:
            return
        correct = (out.detach().argmax(1) == y).sum() / y.shape[0]
        series = self.obs.series("train_acc")
        self.pending.put(self.step, correct, lambda s, a: series.add(s, float(a)))

    def _record_eval_output(self, output: Any) -> None:
        out = structure.first_tensor(output)
        loader = self.last_loader
        if out is None or not out.is_floating_point() or loader is None:
            return
        y = self._labels_for(out)
        if y is None:
            self._record_eval_regression(out, loader)
            return
        logits = out.detach().float()
        value = torch.stack([(logits.argmax(1) == y).sum().float(),
                             _ORIGINAL["cross_entropy"](logits, y, reduction="sum")])
        key = (loader.name, loader.epochs)
        acc = self._eval.setdefault(key, [0.0, 0.0, 0.0, float(self.step)])
        n = float(y.shape[0])

        def sink(step: int, arr: np.ndarray) -> None:
            acc[0] += float(arr[0])
            acc[1] += float(arr[1])
            acc[2] += n
        self.pending.put(self.step, value, sink)

    def _record_eval_regression(self, out: torch.Tensor, loader: LoaderInfo) -> None:
        """Held-out squared error, and the targets' spread (the error of predicting the mean)."""
        y = self.batch_labels
        if (y is None or not y.is_floating_point() or y.device != out.device
                or y.numel() != out.numel() or y.dim() == 0 or y.shape[0] != out.shape[0]):
            return
        p, t = out.detach().float().reshape(-1), y.detach().float().reshape(-1)
        value = torch.stack([((p - t) ** 2).sum(), t.sum(), (t * t).sum()])
        acc = self._eval_reg.setdefault((loader.name, loader.epochs),
                                        [0.0, 0.0, 0.0, 0.0, float(self.step)])
        n = float(t.numel())

        def sink(step: int, arr: np.ndarray) -> None:
            for i in range(3):
                acc[i] += float(arr[i])
            acc[3] += n
        self.pending.put(self.step, value, sink)

    # -- optimizers --------------------------------------------------------------
    def _watch_optimizer(self, opt: torch.optim.Optimizer) -> bool:
        if self.opts.optimizers and not any(opt is o for o in self.opts.optimizers):
            return False
        if id(opt) not in self.optimizers:
            self.optimizers[id(opt)] = (weakref.ref(opt), len(self.optimizers))
        return True

    def _opt_params(self, opt: torch.optim.Optimizer) -> list[torch.Tensor]:
        return [p for g in opt.param_groups for p in g["params"]]

    def _pre_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self._watch_optimizer(opt):
            return
        if self.primary is None:
            self.primary = id(opt)
            self.backward_step_pending = False
            if self.preflight is not None:    # the experiments, before the first update
                self.preflight.run(self, opt)
        params = self._opt_params(opt)
        self._record_grads(params)
        if id(opt) == self.primary:
            self.watch.on_step()
        if self._sampled():
            self._clones[id(opt)] = [p.detach().clone() for p in params]
            series = self.obs.series(f"lr/{self.optimizers[id(opt)][1]}")
            lrs = [g.get("lr") for g in opt.param_groups]
            if all(isinstance(v, (int, float)) for v in lrs):
                series.add(self.step, [float(v) for v in lrs])

    def _post_step(self, opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if id(opt) not in self.optimizers:
            return
        self._opt_steps[id(opt)] = self._opt_steps.get(id(opt), 0) + 1
        clones = self._clones.pop(id(opt), None)
        if clones:
            params = self._opt_params(opt)
            with torch.no_grad():
                delta = torch._foreach_sub(params, clones)
                # the norms of the updates, then of the weights: divided on the host
                norms = [*torch._foreach_norm(delta), *torch._foreach_norm(clones)]
            names = self._names_of(params, tuple(map(id, params)))
            self.pending.put(self.step, norms, self._sink_for([("ratio", "update_ratio", names)]))
        if id(opt) == self.primary:
            self._end_step()

    def _names_of(self, params: list[torch.Tensor], ids: tuple[int, ...]) -> tuple[str, ...]:
        """The names of the parameters ``ids`` (of ``params``), looked up once per set."""
        names = self._names.get(ids)
        if names is None:
            by_id = {id(p): p for p in params}
            names = self._names[ids] = tuple(self._param_name(by_id[i]) for i in ids)
        return names

    def _param_name(self, p: torch.Tensor) -> str:
        for entry in self.models.values():
            name = entry.param_names.get(id(p))
            if name is not None:
                return name
        return f"param{id(p) % 100000}"

    def _record_grads(self, params: list[torch.Tensor]) -> None:
        grads: list[torch.Tensor] = []
        ids: list[int] = []
        strided = torch.strided
        for p in params:
            g = p.grad
            if g is None:
                continue
            if g.layout != strided:
                self.note("gradient norms skipped for sparse gradients")
                continue
            grads.append(g)
            ids.append(id(p))
        if not grads:
            return
        norms = torch._foreach_norm(grads)
        names = self._names_of(params, tuple(ids))
        self.cur.rows.append(("grad_norm", names, list(norms)))   # copied with the step
        self.cur.grads = True

    def _row_columns(self, key: str, names: tuple[str, ...]) -> list[int]:
        """The column of each name in the ``key`` timeline; new names add columns."""
        idx = self._row_index.get((key, names))
        if idx is None:
            series = self.obs.series(key)
            if series.columns is None:
                series.columns = []
            cols = series.columns
            at = {n: i for i, n in enumerate(cols)}
            for n in names:
                if n not in at:
                    at[n] = len(cols)
                    cols.append(n)
            idx = self._row_index[(key, names)] = [at[n] for n in names]
        return idx

    def _sink_for(self, layout: list[tuple[Any, ...]]) -> StepSink:
        key = tuple(layout)
        sink = self._step_sinks.get(key)
        if sink is None:
            sink = self._step_sinks[key] = StepSink(self, layout)
        return sink

    # -- steps -------------------------------------------------------------------
    def flush(self) -> None:
        """Copy the pending device values to the host and tell the listeners."""
        t0 = time.perf_counter()
        self.pending.flush()
        self._replay_nan()
        self.obs.seconds = t0 - self._t0
        self.obs.extra["overhead"] = self.overhead()
        self.obs.extra["nbdebug_seconds"] = self.own_seconds
        #: held-out rounds so far (loader, step, mean loss, accuracy): the live plots
        self._close_rounds()
        #: held-out rounds still open (the closed ones are in the eval/ timelines)
        self.obs.extra["eval_running"] = [(name, int(a[3]), a[1] / a[2], a[0] / a[2])
                                          for (name, _), a in self._eval.items() if a[2]]
        for listener in list(self.listeners):
            try:
                listener(self.obs)
            except Exception:
                self._error("listener")
                self.listeners.remove(listener)
        # (its time, listeners included, counts in own_seconds through the hook that called it)
        self._last_flush = time.perf_counter()

    def _close_rounds(self, everything: bool = False) -> None:
        """Move finished held-out rounds into their bounded timelines: a round ends when its
        loader starts the next one (or the run ends). Memory stays flat however many
        rounds a run makes."""
        current = {info.name: info.epochs for _, info in self.loaders.values()}
        obs = self.obs
        for key in sorted(self._eval_reg):
            name, rnd = key
            if everything or rnd < current.get(name, rnd + 1):
                sq, tot, tot_sq, n, step = self._eval_reg.pop(key)
                if n:
                    mean = tot / n
                    obs.series(f"heldout_mse/{name}").add(int(step), {
                        "round": rnd, "mse": sq / n,
                        "baseline": max(tot_sq / n - mean * mean, 0.0), "n": n})
        for key in sorted(self._eval):
            name, rnd = key
            if everything or rnd < current.get(name, rnd + 1):
                correct, loss_sum, count, step = self._eval.pop(key)
                if count:
                    obs.series(f"eval/{name}").add(int(step), {
                        "round": rnd, "acc": correct / count, "loss": loss_sum / count,
                        "n": count})

    def overhead(self) -> float | None:
        """nbdebug's own host time as a share of the watched code's time so far."""
        elapsed = time.perf_counter() - self._t0
        rest = elapsed - self.own_seconds
        return self.own_seconds / rest if rest > 0 else None

    def _end_step(self, final: bool = False) -> None:
        if self.primary is None and not self.cur.grads:
            for entry in self.models.values():
                m = entry.module()
                if m is not None:
                    self._record_grads(list(m.parameters()))
        cur, self.cur = self.cur, _Step()
        self.backward_step_pending = False
        step = self.step
        if final and self.primary is not None:
            # backward calls after the last optimizer step: not a step, but still guarded
            cur.losses = []
        # the step's loss, NaN guards and gradient norms go to the host as one tensor
        values: list[torch.Tensor] = []
        layout: list[tuple[Any, ...]] = []
        if cur.losses:
            loss = cur.losses[0] if len(cur.losses) == 1 else torch.stack(cur.losses).mean()
            layout.append(("loss",))
            values.append(loss.float())
        if cur.guards:
            layout.append(("guards", tuple(cur.guard_names), not self.full))
            values.extend(cur.guards)
        for key, names, norms in cur.rows:
            layout.append(("row", key, tuple(names)))
            values.extend(norms)
        if values:
            self.pending.put(step, values, self._sink_for(layout))   # stacked at the flush
        if final and self.primary is not None:
            return
        if self.last_loader is not None:
            self.last_loader.train_steps += 1
            if self.last_loader.role != "train":
                self.last_loader.role = "train"
        self.step += 1
        self.obs.steps = self.step
        self.watch.end_window()
        if final:
            return
        if self.step % FLUSH_EVERY == 0 or (
                self.live and time.perf_counter() - self._last_flush > FLUSH_SECONDS):
            t0 = time.perf_counter()
            self.flush()
            self._step_t0 += time.perf_counter() - t0     # not a step's cost
        self._next_step()
        if self.stop_requested:
            self.stop_requested = False
            raise StopTraining("stopped by user")

    def _next_step(self) -> None:
        """Time the step that ended, then choose the next one's kind: sampled or not, full
        or lean. Full steps (the first FULL_STEPS, sampled ones, and any step while no
        optimizer has stepped) run the global module hooks; lean steps hook each model's
        root only and guard its output, so the user's layers run hook-free. The audits of
        the first LABEL_STEPS steps (labels, input ranges, loss inputs) run on both."""
        now = time.perf_counter()
        if self.step > LABEL_STEPS:
            took = now - self._step_t0
            if self.sampled:
                self._sampled_seconds += took
                self._sampled_steps += 1
            else:
                self._lean_seconds += took
                self._lean_steps += 1
        self._step_t0 = now
        if self.opts.adaptive and self.step % FLUSH_EVERY == 0:
            self._adapt()
        self.sampled = self.step % self.interval == 0
        full = self.sampled or self.step < FULL_STEPS or self.primary is None
        if full != self.full and self.depth == 0:
            self._set_full(full)

    def _adapt(self) -> None:
        """Sample less often while sampled steps cost more than SAMPLED_BUDGET of a step."""
        if self._sampled_steps < 2 or self._lean_steps < 5:
            return
        lean = self._lean_seconds / self._lean_steps
        extra = self._sampled_seconds / self._sampled_steps - lean
        base = self.opts.every
        need = extra / (SAMPLED_BUDGET * lean) if lean > 0 else MAX_INTERVAL
        # never fewer than about ten samples over the run so far: short runs keep theirs
        cap = max(base, min(MAX_INTERVAL, self.step // 10) // base * base)
        self.interval = int(min(cap, max(base, base * math.ceil(need / base))))

    def sampling(self) -> dict[str, Any]:
        """How statistics were sampled: the base interval, and the one nbdebug settled on."""
        return {"every": self.opts.every, "adaptive": self.opts.adaptive,
                "interval": self.interval}

    def _replay_nan(self) -> None:
        try:
            self.replay.after_flush()
        except Exception:
            self.replay.active = False
            self._error("nan replay")

    def _nan_candidate(self, event: NanEvent) -> None:
        """Keep the earliest event; within one step the order is input, forward, loss, backward."""
        order = {"input": 0, "forward": 1, "loss": 2, "backward": 3}
        cur = self.obs.nan
        if cur is None or (event.step, order[event.phase]) < (cur.step, order[cur.phase]):
            self.obs.nan = event

    # -- backward ----------------------------------------------------------------
    def _wrap_backward(self, original: Callable[..., Any]) -> Callable[..., Any]:
        capture = self

        def backward(tensors: Any, *args: Any, **kwargs: Any) -> Any:
            if capture._in_backward or capture.suspended:
                return original(tensors, *args, **kwargs)
            capture._in_backward = True
            try:
                t0 = time.perf_counter()
                try:
                    capture._on_backward(tensors)
                except Exception:
                    capture._error("backward")
                capture.own_seconds += time.perf_counter() - t0
                return original(tensors, *args, **kwargs)
            finally:
                capture._in_backward = False
                if capture.primary is None:
                    capture.backward_step_pending = True

        backward.__wrapped__ = original  # type: ignore[attr-defined]
        backward.__doc__ = original.__doc__
        return backward

    def _on_backward(self, tensors: Any) -> None:
        t = structure.first_tensor(tensors)
        if t is None:
            return
        self.obs.backward_calls += 1
        if not self.cur.backward:
            self.watch.before_backward()
        self.cur.backward = True
        loss = t.detach()
        if loss.dim() != 0:
            loss = loss.float().mean()
        self.cur.losses.append(loss)
        if self.obs.backward_calls <= 3:
            chain = structure.grad_chain(t)
            self.obs.extra.setdefault("loss_graph", chain)

    # -- losses ------------------------------------------------------------------
    def _wrap_loss(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        capture = self

        def loss_fn(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(input, target, *args, **kwargs)
            if capture.suspended:                     # pre-flight's own loss calls
                return out
            t0 = time.perf_counter()
            try:
                capture._on_loss(name, input, target, out, kwargs)
            except Exception:
                capture._error(f"loss {name}")
            capture.own_seconds += time.perf_counter() - t0
            return out

        loss_fn.__wrapped__ = original  # type: ignore[attr-defined]
        loss_fn.__doc__ = original.__doc__
        loss_fn.__name__ = name
        return loss_fn

    def _on_loss(self, name: str, input: Any, target: Any, out: Any, kwargs: dict) -> None:
        if not (isinstance(input, torch.Tensor) and isinstance(out, torch.Tensor)):
            return
        training = torch.is_grad_enabled() and out.requires_grad
        if not training:
            return
        if self.preflight is not None and self.primary is None:    # pre-flight's loss
            self.preflight.loss_seen(name, input, target, kwargs, out)
        call = self._losses.get(name)
        if call is None:
            call = self._losses[name] = LossCall(fn=name)
            self.obs.losses.append(call)
        call.calls += 1
        if not self.full and call.calls > DETAIL_CALLS:
            return            # a lean step: ranges, labels and KL audits are done or sampled
        call.reduction = kwargs.get("reduction", call.reduction or "mean")
        call.input_shape = tuple(input.shape)
        if isinstance(target, torch.Tensor):
            call.target_is_index = not target.is_floating_point()
        if call.calls == 1:
            call.input_chain = structure.grad_chain(input)
        if call.calls <= DETAIL_CALLS or self._sampled():
            self._record_loss_ranges(call, input, target)
        if name == "kl_div":
            self.audit.kl_call(call, input, target, out, kwargs, self.step)
        elif name in ("binary_cross_entropy", "binary_cross_entropy_with_logits") and (
                self.step < LABEL_STEPS or self._sampled()):
            self.audit.binary_labels(input, target, self.step)
        if (name in INDEX_LOSSES and isinstance(target, torch.Tensor) and call.target_is_index
                and input.dim() >= 2 and (self.step < LABEL_STEPS or self._sampled())):
            classes = int(input.shape[1])
            series = self.obs.series("labels")
            series.columns = [str(c) for c in range(classes)]
            hist = label_histogram(target, classes)
            self.pending.put(self.step, hist, lambda s, a: series.add(s, a.tolist()))

    def _record_loss_ranges(self, call: LossCall, input: torch.Tensor, target: Any) -> None:
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
        self.pending.put(self.step, parts, sink)

    # -- loaders -----------------------------------------------------------------
    def _watch_loader(self, loader: Any) -> LoaderInfo | None:
        if self.opts.loaders and not any(loader is ld for ld in self.opts.loaders):
            return None
        entry = self.loaders.get(id(loader))
        if entry is None or entry[0]() is not loader:
            info = structure.describe_loader(
                self._name_of(loader, f"loader{len(self.loaders)}"), loader)
            self.loaders[id(loader)] = (weakref.ref(loader), info)
            try:
                self._epoch_batches[id(info)] = len(loader)
            except Exception:                  # an iterable data set has no length
                self._epoch_batches[id(info)] = None
            self.obs.loaders.append(info)
            return info
        return entry[1]

    def _wrap_iter(self, original: Callable[..., Any]) -> Callable[..., Any]:
        capture = self

        def __iter__(loader: Any) -> Any:
            it = original(loader)
            try:
                info = capture._watch_loader(loader)
                if info is not None:
                    info.epochs += 1
                    capture._iter_loader[it] = info
            except Exception:
                capture._error("loader iter")
            return it

        __iter__.__wrapped__ = original  # type: ignore[attr-defined]
        return __iter__

    def _wrap_next(self, original: Callable[..., Any]) -> Callable[..., Any]:
        capture = self

        def __next__(it: Any) -> Any:
            batch = original(it)
            if capture.suspended:
                return batch
            t0 = time.perf_counter()
            try:
                if capture._last_iter() is it:        # the same iterator as the last batch
                    info = capture._last_iter_info
                else:
                    info = capture._iter_loader.get(it)
                    capture._last_iter, capture._last_iter_info = weakref.ref(it), info
                if info is not None:
                    info.batches += 1
                    capture.last_loader = info
                    if capture.sampled or info.role != "train":
                        # labels read this step: split now, before the loop can change
                        # the batch (``batch.pop("labels")``)
                        capture._batch = None
                        capture._labels = structure.split_batch(batch)[1]
                    else:
                        capture._batch, capture._labels = batch, None
            except Exception:
                capture._error("loader next")
            capture.own_seconds += time.perf_counter() - t0
            return batch

        __next__.__wrapped__ = original  # type: ignore[attr-defined]
        return __next__

    # -- the end -----------------------------------------------------------------
    def _name_of(self, obj: Any, default: str) -> str:
        """The user's variable name for ``obj`` (looked up once, when it is first seen)."""
        try:
            for key, value in list(self._namespace().items()):
                if value is obj and isinstance(key, str) and not key.startswith("_"):
                    return key
        except Exception:
            self._error("names")
        return default

    def _finish_observations(self) -> None:
        obs = self.obs
        obs.seconds = time.perf_counter() - self._t0
        opts = sorted(((ref(), i) for ref, i in self.optimizers.values() if ref() is not None),
                      key=lambda t: t[1])
        optimized = {id(p) for opt, _ in opts for p in self._opt_params(opt)}
        all_params: dict[int, str] = {}
        for entry in self.models.values():
            all_params.update(entry.param_names)
            module = entry.module()
            if module is None:
                continue
            first = {p.name: p for p in entry.info.params}
            fresh = structure.describe_model(entry.info.name, module, optimized)
            for p in fresh.params:          # keep the first-step statistics
                prev = first.get(p.name)
                if prev is not None:
                    p.mean, p.std, p.min, p.max, p.absmax = (
                        prev.mean, prev.std, prev.min, prev.max, prev.absmax)
            entry.info.modules, entry.info.params = fresh.modules, fresh.params
            inputs = obs.extra.setdefault("inputs", {})
            if entry.input_moments is not None:
                inputs[entry.info.name] = _input_summary(
                    entry.input_moments.cpu().numpy(), entry.input_batches, entry.input_dtype)
                inputs[entry.info.name]["ndim"] = entry.input_ndim
            elif entry.input_dtype is not None:
                inputs[entry.info.name] = {"dtype": entry.input_dtype}
        obs.optimizers = []
        for opt, i in opts:
            info = structure.describe_optimizer(self._name_of(opt, f"optimizer{i}"), opt,
                                                all_params)
            info.steps = self._opt_steps.get(id(opt), 0)
            obs.optimizers.append(info)
        for info in obs.loaders:
            if info.role == "unknown" and info.eval_passes:
                info.role = "eval"
        self._close_rounds(everything=True)
        obs.epochs = max((ld.epochs for ld in obs.loaders if ld.role == "train"), default=0)


_ORIGINAL = {name: getattr(F, name) for name in LOSS_FUNCTIONS}


class _ModuleHook:
    """A hook on the user's own module (lean steps). A copy of the model made while it
    trains (``copy.deepcopy`` of the best model, ``torch.save(model)``) gets a hook that
    does nothing, so copying and pickling work as they do without nbdebug."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> None:
        return self.fn(*args)

    def __deepcopy__(self, memo: dict) -> Callable[..., None]:
        return _inert_hook

    def __reduce__(self) -> tuple[Any, ...]:
        return (_inert, ())


def _inert_hook(*args: Any) -> None:
    return None


def _inert() -> Callable[..., None]:
    return _inert_hook


class StepSink:
    """Where a step's fused row goes on the host: the loss, the NaN guards and per-parameter
    rows, laid out as in ``layout``. One object per layout; ``batch`` takes the rows of
    many steps at once (the flush hands it a window's rows in one call)."""

    def __init__(self, capture: Capture, layout: list[tuple[Any, ...]]) -> None:
        self.cap = capture
        self.parts: list[tuple[tuple[Any, ...], int, int]] = []
        at = 0
        # ("loss",), ("guards", names, lean), ("row", key, names), ("ratio", key, names):
        # a ratio part holds the numerators, then the denominators, of a per-name row
        for part in layout:
            n = 1 if part[0] == "loss" else len(part[1] if part[0] == "guards" else part[2])
            n *= 2 if part[0] == "ratio" else 1
            self.parts.append((part, at, n))
            at += n

    def __call__(self, step: int, arr: np.ndarray) -> None:
        self.batch([step], arr.reshape(1, -1))

    def batch(self, steps: list[int], rows: np.ndarray) -> None:
        cap = self.cap
        for part, at, n in self.parts:
            block = rows[:, at:at + n]
            finite = np.isfinite(block)
            ok = bool(finite.all())
            if part[0] == "loss":
                series = cap.obs.series("loss")
                for s, v in zip(steps, block[:, 0].tolist()):
                    series.add(s, v)
                    if not ok and not math.isfinite(v):
                        cap._nan_candidate(NanEvent(s, "loss", None, _kind(v)))
            elif part[0] == "guards":
                if not ok:
                    i = int(np.flatnonzero(~finite.all(1))[0])
                    self._guard_event(steps[i], part[1], part[2], block[i])
            else:
                key, names = part[1], part[2]
                if part[0] == "ratio":
                    half = len(names)
                    block = block[:, :half] / (block[:, half:] + 1e-12)
                    finite = np.isfinite(block)
                    ok = bool(finite.all())
                idx = cap._row_columns(key, names)
                series = cap.obs.series(key)
                full = np.full((len(steps), len(series.columns or ())), math.nan)
                full[:, idx] = block
                for s, row in zip(steps, full.tolist()):
                    series.add(s, row)
                if not ok and key == "grad_norm":
                    i = int(np.flatnonzero(~finite.all(1))[0])
                    bad = [names[j] for j in np.flatnonzero(~finite[i])]
                    cap._nan_candidate(NanEvent(steps[i], "backward", bad[0],
                                                detail={"params": bad}))

    def _guard_event(self, s: int, names: tuple[str, ...], lean: bool, arr: np.ndarray) -> None:
        bad = np.flatnonzero(~np.isfinite(arr))
        i = int(bad[0])
        phase = "input" if names[i] == "<input>" else "forward"
        detail: dict[str, Any] = {"nonfinite_outputs": [names[j] for j in bad[:10]]}
        if i > 0 and names[i - 1] != "<input>":
            detail["last_finite_output"] = names[i - 1]
        if lean:
            detail["output_only"] = True         # a lean step guards the model's output
        self.cap._nan_candidate(NanEvent(s, phase, None if phase == "input" else names[i],
                                         _kind(float(arr[i])), detail=detail))


def _kind(v: float) -> str:
    return "nan" if math.isnan(v) else "inf"


def _input_summary(m: np.ndarray, batches: int, dtype: str | None) -> dict[str, Any]:
    count, s, sq, lo, hi = m
    with np.errstate(invalid="ignore", over="ignore"):
        mean = s / np.maximum(count, 1)
        var = np.maximum(sq / np.maximum(count, 1) - mean * mean, 0.0)
    return {"dtype": dtype, "batches": batches, "features": int(m.shape[1]),
            "mean": mean.tolist(), "std": np.sqrt(var).tolist(),
            "min": lo.tolist(), "max": hi.tolist()}
