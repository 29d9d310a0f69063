"""Plain descriptions of models, optimizers, loaders, batches and autograd graphs."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from ..observations import GroupInfo, LoaderInfo, ModelInfo, ModuleInfo, OptimizerInfo, ParamInfo

#: module attributes worth keeping for the checks
_ATTRS = ("p", "num_features", "in_features", "out_features", "in_channels", "out_channels",
          "kernel_size", "num_layers", "hidden_size", "inplace", "momentum", "affine",
          "track_running_stats", "num_embeddings", "embedding_dim", "dim")


def is_uninitialized(p: Any) -> bool:
    """A lazy module's parameter before its first forward: it has no shape or values yet."""
    return isinstance(p, nn.parameter.UninitializedParameter)


def describe_model(name: str, model: nn.Module, optimized: set[int]) -> ModelInfo:
    """The model's modules and parameters; a lazy module's parameters that are not yet
    materialised are left out (a later description, at the end of the run, has them)."""
    info = ModelInfo(name=name, type=type(model).__name__)
    for sub_name, sub in model.named_modules():
        attrs: dict[str, Any] = {}
        for a in _ATTRS:
            v = getattr(sub, a, None)
            if isinstance(v, (int, float, bool, str, tuple)):
                attrs[a] = v
        if hasattr(sub, "bias") and (isinstance(sub.bias, torch.Tensor) or sub.bias is None):
            attrs["bias"] = sub.bias is not None
        info.modules.append(ModuleInfo(
            name=qualify(name, sub_name), type=type(sub).__name__,
            leaf=next(iter(sub.children()), None) is None, attrs=attrs))
    for pname, p in model.named_parameters():
        if is_uninitialized(p):
            continue
        info.params.append(ParamInfo(
            name=qualify(name, pname), shape=tuple(p.shape), requires_grad=p.requires_grad,
            in_optimizer=id(p) in optimized))
    return info


def qualify(root: str, sub: str) -> str:
    return f"{root}.{sub}" if sub else root


def describe_optimizer(name: str, opt: torch.optim.Optimizer,
                       param_names: dict[int, str]) -> OptimizerInfo:
    info = OptimizerInfo(name=name, type=type(opt).__name__)
    for i, g in enumerate(opt.param_groups):
        params = g.get("params", [])
        lr = g.get("lr")
        betas = g.get("betas")
        info.groups.append(GroupInfo(
            index=i, lr=_number(lr),
            weight_decay=_number(g.get("weight_decay", 0.0)) or 0.0,
            momentum=_number(g.get("momentum")),
            nesterov=g.get("nesterov") if isinstance(g.get("nesterov"), bool) else None,
            betas=tuple(_number(b) for b in betas) if isinstance(betas, (tuple, list)) else None,
            params=[param_names.get(id(p), f"{name}.group{i}.param{j}")
                    for j, p in enumerate(params)],
            param_ndims=[-1 if is_uninitialized(p) else p.dim() for p in params],
            extra={k: _number(v) for k, v in g.items()
                   if k not in ("params", "lr", "betas") and _number(v) is not None
                   or isinstance(v, bool) and k != "params"},
        ))
        info.foreign_params += sum(1 for p in params if id(p) not in param_names)
    return info


def _number(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return float(v)
    return None


def describe_loader(name: str, loader: Any) -> LoaderInfo:
    info = LoaderInfo(name=name, kind=type(loader).__name__)
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    if sampler is not None:
        info.sampler = type(sampler).__name__
        info.shuffled = not isinstance(sampler, torch.utils.data.SequentialSampler)
        if isinstance(sampler, torch.utils.data.distributed.DistributedSampler):
            info.shuffled = bool(getattr(sampler, "shuffle", True))
    if batch_sampler is not None and type(batch_sampler) is not torch.utils.data.BatchSampler:
        info.sampler = type(batch_sampler).__name__
        info.shuffled = None            # a custom batch sampler: order unknown
    info.batch_size = getattr(loader, "batch_size", None)
    info.drop_last = getattr(loader, "drop_last", None)
    try:
        info.dataset_size = len(loader.dataset)
    except Exception:
        info.dataset_size = None
    return info


# -- batches ---------------------------------------------------------------------------
_LABEL_KEYS = ("labels", "label", "targets", "target", "y", "class", "classes")
_INPUT_KEYS = ("inputs", "input", "x", "images", "image", "features", "input_ids",
               "pixel_values", "data")


def split_batch(batch: Any) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(inputs, labels) of a batch that is a tensor, a tuple/list or a dict."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        x = next((batch[k] for k in _INPUT_KEYS if isinstance(batch.get(k), torch.Tensor)), None)
        y = next((batch[k] for k in _LABEL_KEYS if isinstance(batch.get(k), torch.Tensor)), None)
        if x is None:
            x = next((v for v in batch.values() if isinstance(v, torch.Tensor) and v is not y),
                     None)
        return x, y
    if isinstance(batch, (tuple, list)):
        tensors = [b for b in batch if isinstance(b, torch.Tensor)]
        if not tensors:
            return None, None
        return tensors[0], (tensors[1] if len(tensors) > 1 else None)
    return None, None


def first_tensor(value: Any, depth: int = 0) -> torch.Tensor | None:
    """The main tensor of a module output: itself, the first of a tuple, ``logits`` ..."""
    if isinstance(value, torch.Tensor):
        return value
    if depth > 2:
        return None
    if isinstance(value, (tuple, list)):
        for v in value:
            t = first_tensor(v, depth + 1)
            if t is not None:
                return t
        return None
    if isinstance(value, dict):
        for key in ("logits", "out", "output", "pred", "y"):
            if isinstance(value.get(key), torch.Tensor):
                return value[key]
        for v in value.values():
            t = first_tensor(v, depth + 1)
            if t is not None:
                return t
        return None
    logits = getattr(value, "logits", None)
    return logits if isinstance(logits, torch.Tensor) else None


def all_tensors(value: Any) -> list[torch.Tensor]:
    """Every tensor in ``value`` (nested tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in all_tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in all_tensors(v)]
    return []


def input_bytes(args: tuple[Any, ...]) -> int:
    """The bytes of a forward's tensor inputs (as dense tensors: a sparse one has no
    ``nbytes``)."""
    if len(args) == 1 and isinstance(args[0], torch.Tensor):
        return args[0].numel() * args[0].element_size()
    return sum(t.numel() * t.element_size() for t in all_tensors(args))


class SpanInputs(list):
    """A steady span's training forwards handed over at once: (step, args) in order, and
    what the probes read of each, made once for them all: its first tensor and its bytes
    (a forward of one tensor, ``model(x)``, the usual one, without a call per forward)."""

    def __init__(self, first: int, inputs: list[tuple[Any, ...]]) -> None:
        super().__init__(zip(range(first, first + len(inputs)), inputs))
        self._plain: list[torch.Tensor] | None = [
            a[0] for a in inputs if len(a) == 1 and isinstance(a[0], torch.Tensor)]
        if len(self._plain) != len(inputs):
            self._plain = None

    def tensors(self) -> list[tuple[int, torch.Tensor]]:
        """(step, the first tensor of its args), for the forwards that have one."""
        if self._plain is not None:
            return list(zip((s for s, _ in self), self._plain))
        return [(s, x) for s, a in self if (x := first_tensor(a)) is not None]

    def sizes(self) -> list[int]:
        """The bytes of each forward's tensor inputs."""
        if self._plain is not None:
            return [x.numel() * x.element_size() for x in self._plain]
        return [input_bytes(a) for _, a in self]


def output_kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return "tensor"
    return type(value).__name__


# -- autograd graphs -------------------------------------------------------------------
#: nodes that only reshape or move data: looked through when naming what fed a tensor
_PASS_THROUGH = ("View", "Reshape", "Unsqueeze", "Squeeze", "Permute", "Transpose", "Clone",
                 "Expand", "ToCopy", "Contiguous", "Select", "Slice", "Index", "T")


def grad_chain(t: torch.Tensor, limit: int = 6) -> list[str]:
    """Names of the autograd nodes that produced ``t``, walking the first input each time.

    Pure graph metadata, no tensor values: ``["LogSoftmaxBackward0", "SoftmaxBackward0",
    "AddmmBackward0"]`` for a log of a softmax of a Linear.
    """
    names: list[str] = []
    node = getattr(t, "grad_fn", None)
    while node is not None and len(names) < limit:
        names.append(node.name())
        nxt = [f for f, _ in getattr(node, "next_functions", ()) if f is not None]
        node = nxt[0] if nxt else None
    return names


def meaningful(chain: list[str]) -> list[str]:
    """The chain without pure reshaping nodes."""
    return [n for n in chain if not any(n.startswith(p) for p in _PASS_THROUGH)]


def user_frames() -> Any:
    """The frames on the stack outside nbdebug and torch, innermost first: the user's code."""
    import sys
    skip = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            os.path.dirname(os.path.abspath(torch.__file__)))
    frame: Any = sys._getframe(1)
    while frame is not None:
        if not frame.f_code.co_filename.startswith(skip):
            yield frame
        frame = frame.f_back


def frame_line(frame: Any) -> str:
    """``file.py:12 (function)`` for a frame."""
    code = frame.f_code
    return f"{os.path.basename(code.co_filename)}:{frame.f_lineno} ({code.co_name})"


def user_line() -> str:
    """The user's line that made the call under way: the first frame outside nbdebug and
    torch ("?" when there is none)."""
    frame = next(user_frames(), None)
    return "?" if frame is None else frame_line(frame)


def local_name(obj: Any) -> str | None:
    """The name the calling user code gives ``obj``: a local variable of a frame on the
    stack outside nbdebug and torch, or an attribute of one (``self.opt``, ``trainer.opt``)."""
    for frame in user_frames():
        found = _name_in(frame.f_locals, obj)
        if found:
            return found
    return None


def user_name(namespace: dict[str, Any], obj: Any) -> str | None:
    """The user's name for ``obj``: a variable of the cell, else a local of a function the
    cell called (or an attribute of one: ``trainer.opt``)."""
    for key, value in list(namespace.items()):
        if value is obj and isinstance(key, str) and not key.startswith("_"):
            return key
    return local_name(obj)


def _name_in(names: dict[str, Any], obj: Any) -> str | None:
    for key, value in names.items():
        if value is obj and not key.startswith("_"):
            return key
    for key, value in names.items():
        attrs = getattr(value, "__dict__", None)
        if key.startswith("__") or not isinstance(attrs, dict) or isinstance(value, type):
            continue
        for attr, inner in list(attrs.items())[:64]:
            if inner is obj and not attr.startswith("_"):
                return f"{key}.{attr}"
    return None


#: random number generators a data set may hold; each worker process gets a copy of it
_RNG_TYPES = ("Generator", "RandomState", "Random")


def worker_rngs(loader: Any) -> list[list[str]]:
    """Random generators that every DataLoader worker inherits in the same state: objects
    held by the data set (or one level below: its transform) when the loader has workers
    and no ``worker_init_fn`` to reseed them. Read from attributes only: nothing is drawn."""
    if getattr(loader, "num_workers", 0) <= 0 or getattr(loader, "worker_init_fn", None):
        return []
    found: list[list[str]] = []
    dataset = getattr(loader, "dataset", None)
    for path, obj in _attributes("dataset", dataset, depth=2):
        kind = type(obj)
        if kind.__name__ in _RNG_TYPES and kind.__module__.split(".")[0] in (
                "numpy", "random"):
            found.append([path, kind.__name__])
    return found[:8]


def _attributes(path: str, obj: Any, depth: int) -> list[tuple[str, Any]]:
    attrs = getattr(obj, "__dict__", None)
    if depth == 0 or not isinstance(attrs, dict) or isinstance(obj, (type, torch.Tensor)):
        return []
    out = []
    for key, value in list(attrs.items())[:64]:
        out.append((f"{path}.{key}", value))
        out += _attributes(f"{path}.{key}", value, depth - 1)
    return out
