"""Device-resident pending values, copied to the host in one transfer per flush.

Hooks ``put`` small device tensors (0-d or 1-d) under a key; nothing is read back until
``flush``, which concatenates everything per device, makes one (non-blocking, pinned on
CUDA) copy to the host and hands out numpy arrays; every sink runs even when another
one fails (the first failure is raised after them). Between flushes memory is bounded by
the number of steps in a flush window times the values per step.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

Sink = Callable[[int, np.ndarray], None]


#: values held before a flush is forced (a long loop with no training step, say)
MAX_PENDING = 8192


class Pending:
    def __init__(self, limit: int = MAX_PENDING) -> None:
        self._items: list[tuple[int, torch.Tensor | list[torch.Tensor], Sink]] = []
        self.limit = limit

    def __len__(self) -> int:
        return len(self._items)

    def put(self, step: int, value: torch.Tensor | list[torch.Tensor], sink: Sink) -> None:
        """Keep ``value`` (on its device) until the next flush, then call ``sink(step, array)``.

        ``value`` may be a list of 0-d tensors (a row): they are stacked at the flush with
        every other scalar, so a row costs no operation when it is put.
        """
        self._items.append((step, value, sink))
        if len(self._items) >= self.limit:
            self.flush()

    def flush(self) -> None:
        items, self._items = self._items, []
        if not items:
            return
        by_device: dict[torch.device, list[int]] = {}
        for i, (_, value, _) in enumerate(items):
            device = value[0].device if isinstance(value, list) else value.device
            by_device.setdefault(device, []).append(i)
        # where each item's values lie on the host: (array, offset, size)
        place: list[Any] = [None] * len(items)
        for device, idx in by_device.items():
            vecs: list[torch.Tensor] = []
            vectors, scalars = [], []
            flat: list[torch.Tensor] = []
            for i in idx:
                v = items[i][1]
                if isinstance(v, list):
                    scalars.append(i)
                    flat.extend(v)
                elif v.dim():
                    vectors.append(i)
                    vecs.append(v)
                else:
                    scalars.append(i)
                    flat.append(v)
            try:
                arr = _to_host(device, vecs, flat)
            except RuntimeError:   # a row spread over devices, or DTensors (their shards)
                arr = _to_host(device, [_local(v) for v in vecs],
                               [_local(t).to(device) for t in flat])
            offset = 0
            for i, v in zip(vectors, vecs):
                place[i] = (arr, offset, v.numel())
                offset += v.numel()
            for i in scalars:
                v = items[i][1]
                n = len(v) if isinstance(v, list) else 1
                place[i] = (arr, offset, n)
                offset += n
        # a sink with a ``batch`` method takes its consecutive rows at once (one call per
        # run of steps instead of one per step, the run one block of the host array); the
        # others get each value in order
        # the others get each value; every sink in the order its values were put
        run: list[Any] = []                   # [sink, steps, array, start, size, count]
        failed: list[Exception] = []

        def call(fn: Any, *args: Any) -> None:
            try:
                fn(*args)
            except Exception as exc:      # one bad sink must not drop the others' values
                failed.append(exc)

        def end_run() -> None:
            if run:
                sink, steps, arr, start, n, count = run
                call(sink.batch, steps, arr[start:start + n * count].reshape(count, n).copy())
                run.clear()
        for (step, value, sink), (arr, off, n) in zip(items, place):
            if getattr(sink, "batch", None) is None:
                end_run()
                scalar = not isinstance(value, list) and not value.dim()
                one = arr[off:off + n].copy()
                call(sink, step, one.reshape(()) if scalar else one)
            elif (run and run[0] is sink and run[2] is arr and run[4] == n
                    and run[3] + run[4] * run[5] == off):
                run[1].append(step)
                run[5] += 1
            else:
                end_run()
                run.extend([sink, [step], arr, off, n, 1])
        end_run()
        if failed:
            raise failed[0]               # the caller records it as an internal error


def _local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local tensor (the values this rank holds); any other tensor itself."""
    return getattr(t, "_local_tensor", t)


def _to_host(device: torch.device, vectors: list[torch.Tensor],
             scalars: list[torch.Tensor]) -> np.ndarray:
    """The values of one device as one float64 array: the vectors flattened in order, then
    the 0-d values; one concatenation and one copy to the host. On the CPU the 0-d
    values are read one by one: no copy to make, and a stack costs more a value (one
    view each, and one conversion each when their dtypes differ)."""
    if device.type == "cpu" and scalars and all(type(t) is torch.Tensor for t in scalars):
        read = np.fromiter(map(torch.Tensor.item, scalars), np.float64, len(scalars))
        return read if not vectors else np.concatenate([_to_host(device, vectors, []), read])
    flat = [v if v.dim() == 1 else v.reshape(-1) for v in vectors]
    if scalars:
        flat.append(_stacked(scalars))
    joined = (flat[0] if len(flat) == 1 else torch.cat(flat)).detach()
    if device.type == "cuda":
        joined = joined.to(torch.float64)
        buf = torch.empty(joined.shape, dtype=joined.dtype, pin_memory=True)
        buf.copy_(joined, non_blocking=True)
        torch.cuda.current_stream(device).synchronize()
        return buf.numpy()
    if joined.device.type != "cpu" or not _numpy_ok(joined.dtype):
        joined = joined.to("cpu", torch.float64)
    return joined.numpy().astype(np.float64)


def _stacked(scalars: list[torch.Tensor]) -> torch.Tensor:
    """The 0-d values as one vector, in order: one stack per dtype. (A stack of mixed
    dtypes, float losses and integer counts, converts each value on its own: about five
    times slower.) Several dtypes, or half precision, give float64 (exact counts)."""
    groups: dict[torch.dtype, list[int]] = {}
    for i, v in enumerate(scalars):
        groups.setdefault(v.dtype, []).append(i)
    if len(groups) == 1 and scalars[0].dtype not in (torch.float16, torch.bfloat16):
        return torch.stack(scalars)
    if len(groups) == 1:
        return torch.stack(scalars).to(torch.float64)
    out = torch.empty(len(scalars), dtype=torch.float64, device=scalars[0].device)
    for idx in groups.values():
        part = torch.stack([scalars[i] for i in idx]).to(torch.float64)
        out.index_copy_(0, torch.tensor(idx, device=out.device), part)
    return out


def _numpy_ok(dtype: torch.dtype) -> bool:
    return dtype in (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                     torch.bool, torch.uint8, torch.int16, torch.int8)
