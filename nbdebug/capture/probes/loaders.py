"""Loaders: which DataLoaders the cell iterates, their epochs and batches, and the labels
of the batch each gives (read only when a step needs them)."""

from __future__ import annotations

import weakref
from typing import Any, Callable

from torch.utils.data import DataLoader
from torch.utils.data.dataloader import _BaseDataLoaderIter

from ...observations import LoaderInfo
from ... import keys
from .. import structure
from .base import Probe


class LoaderProbe(Probe):
    STEADY = frozenset({"train_input", "step_end"})

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._name_of = ctx.name_of
        self._patches: Any = None
        self._guard: Any = None
        self._only = ctx.only_loaders
        #: id(loader) -> (weak reference, info)
        self.loaders: dict[int, tuple[weakref.ref, LoaderInfo]] = {}
        self._iter_loader: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._last_iter: Callable[[], Any] = lambda: None
        self._last_info: LoaderInfo | None = None
        self._in_epoch: dict[int, int] = {}     # id(info) -> batches of its current epoch
        #: id(info) -> epochs in which a training step took its batches (passes that only
        #: evaluate on the training data are not training epochs)
        self._trained: dict[int, int] = {}
        self._epoch_trained: set[int] = set()
        #: id(info) -> training-mode forwards on its batches (a loader that never trains
        #: but is run through the model in train mode is a held-out pass left in train mode)
        self._forwards: dict[int, int] = {}

    def attach(self, patches: Any, guard: Any) -> None:
        self._patches, self._guard = patches, guard
        patches.wrap(DataLoader, "__iter__", guard, after=self._on_iter, steady=True)
        patches.wrap(_BaseDataLoaderIter, "__next__", guard, after=self._on_next)

    def light_arm(self, undo: list[Callable[[], None]]) -> None:
        """A light sample on a steady span (its batches drawn unseen): keep the labels of
        each batch the training loader gives, until the span calls the undo."""
        patches, ctx = self._patches, self.ctx

        def caught(args: tuple, kwargs: dict, batch: Any) -> None:
            info = self._iter_loader.get(args[0]) if args else None
            if info is not None and info is ctx.loader:
                ctx.set_batch(batch, split_now=True)
        wrapper = patches.wrap(_BaseDataLoaderIter, "__next__", self._guard, after=caught,
                               steady=True)
        undo.append(lambda: patches.undo(_BaseDataLoaderIter, "__next__", wrapper))

    def watch(self, loader: Any) -> LoaderInfo | None:
        if self._only and not any(loader is ld for ld in self._only):
            return None
        entry = self.loaders.get(id(loader))
        if entry is not None and entry[0]() is loader:
            return entry[1]
        info = structure.describe_loader(self._name_of(loader, f"loader{len(self.loaders)}"),
                                         loader)
        self.loaders[id(loader)] = (weakref.ref(loader), info)
        try:
            self.ctx.epoch_batches[id(info)] = len(loader)
        except Exception:                  # an iterable data set has no length
            self.ctx.epoch_batches[id(info)] = None
        self.ctx.obs.loaders.append(info)
        rngs = structure.worker_rngs(loader)
        if rngs:
            self.ctx.obs.extra.setdefault(keys.WORKER_RNG, {})[info.name] = {
                "generators": rngs, "workers": int(loader.num_workers)}
        return info

    def _on_iter(self, args: tuple, kwargs: dict, it: Any) -> None:
        info = self.watch(args[0])
        # a steady span's batches so far are the last epoch's; the training loader's next
        # epoch goes on on the span, any other loader's pass is watched whole
        if info is not None and info.role == "train":
            self.ctx.split()
        else:
            self.ctx.sync()
        if info is not None:
            info.epochs += 1
            self._iter_loader[it] = info
            self._in_epoch[id(info)] = 0
            self._epoch_trained.discard(id(info))
            if info.role != "train":
                self.ctx.wake()                 # a held-out pass: watch it whole
            else:
                self._left(info)

    def _on_next(self, args: tuple, kwargs: dict, batch: Any) -> None:
        it = args[0]
        if self._last_iter() is it:        # the same iterator as the last batch
            info = self._last_info
        else:
            info = self._iter_loader.get(it)
            self._last_iter, self._last_info = weakref.ref(it), info
        if info is None:
            return
        ctx = self.ctx
        info.batches += 1
        self._in_epoch[id(info)] = self._in_epoch.get(id(info), 0) + 1
        ctx.cur.batches += 1
        ctx.loader = info
        if info.role == "train":
            self._left(info)
        # labels read this step: split now, before the loop can change the batch
        # (``batch.pop("labels")``)
        ctx.set_batch(batch, split_now=ctx.sampled or info.role != "train")

    def _left(self, info: LoaderInfo) -> None:
        n = self.ctx.epoch_batches.get(id(info))
        self.ctx.epoch_left = None if n is None else n - self._in_epoch.get(id(info), 0)

    def train_input(self, entry: Any, module: Any, args: tuple[Any, ...]) -> None:
        loader = self.ctx.loader
        if loader is not None:
            self._forwards[id(loader)] = self._forwards.get(id(loader), 0) + 1

    def steady_inputs(self, entry: Any, module: Any, items: list[tuple[int, tuple]]) -> None:
        loader = self.ctx.loader
        if loader is not None:
            self._forwards[id(loader)] = self._forwards.get(id(loader), 0) + len(items)

    def step_end(self, record: Any) -> None:
        self._ended(1, record.unseen and not record.batches)

    def steady_steps(self, count: int) -> None:
        self._ended(count, True)

    def _ended(self, steps: int, unseen: bool) -> None:
        """``steps`` training steps ended; ``unseen``: each drew its batch unseen."""
        self.ctx.batch_fresh = False          # its batch trained: a later forward is another
        loader = self.ctx.loader
        if loader is None:
            return
        if id(loader) not in self._epoch_trained:
            self._epoch_trained.add(id(loader))
            self._trained[id(loader)] = self._trained.get(id(loader), 0) + 1
        if unseen:
            # steady steps drew their batches unseen: one batch each, as every step before
            loader.batches += steps
            self._in_epoch[id(loader)] = self._in_epoch.get(id(loader), 0) + steps
            self._left(loader)
        loader.train_steps += steps
        if loader.role != "train":
            loader.role = "train"

    def finish(self) -> None:
        obs = self.ctx.obs
        training = any(info.role == "train" for info in obs.loaders)
        for info in obs.loaders:
            if info.role == "unknown" and info.eval_passes:
                info.role = "eval"
            elif info.role == "unknown" and training and self._forwards.get(id(info)):
                # run through the model, never trained on: a held-out pass in train mode
                info.role = "eval"
                d = obs.dynamics
                d["eval_passes_in_train_mode"] = (d.get("eval_passes_in_train_mode", 0)
                                                  + self._forwards[id(info)])
                d.setdefault("train_mode_loaders", []).append(info.name)
        obs.epochs = max((self._trained.get(id(ld), 0) for ld in obs.loaders
                          if ld.role == "train"), default=0)
