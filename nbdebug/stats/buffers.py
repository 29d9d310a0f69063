"""Device-resident pending values, copied to the host in one transfer per flush.

Hooks ``put`` small device tensors (0-d or 1-d) under a key; nothing is read back until
``flush``, which concatenates everything per device, makes one (non-blocking, pinned on
CUDA) copy to the host and hands out numpy arrays. Between flushes memory is bounded by
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
        self._items: list[tuple[int, torch.Tensor, Sink]] = []
        self.limit = limit

    def __len__(self) -> int:
        return len(self._items)

    def put(self, step: int, value: torch.Tensor, sink: Sink) -> None:
        """Keep ``value`` (on its device) until the next flush, then call ``sink(step, array)``."""
        self._items.append((step, value, sink))
        if len(self._items) >= self.limit:
            self.flush()

    def flush(self) -> None:
        items, self._items = self._items, []
        if not items:
            return
        by_device: dict[torch.device, list[int]] = {}
        for i, (_, value, _) in enumerate(items):
            by_device.setdefault(value.device, []).append(i)
        host: list[Any] = [None] * len(items)
        for device, idx in by_device.items():
            vectors = [i for i in idx if items[i][1].dim()]
            scalars = [i for i in idx if not items[i][1].dim()]
            arr = _to_host(device, [items[i][1] for i in vectors],
                           [items[i][1] for i in scalars])
            offset = 0
            for i in vectors:
                n = items[i][1].numel()
                host[i] = arr[offset:offset + n].copy()
                offset += n
            for k, i in enumerate(scalars):
                host[i] = arr[offset + k:offset + k + 1].copy()
        for (step, value, sink), arr in zip(items, host):
            sink(step, arr if value.dim() else arr.reshape(()))


def _to_host(device: torch.device, vectors: list[torch.Tensor],
             scalars: list[torch.Tensor]) -> np.ndarray:
    """The values of one device as one float64 array: the vectors flattened in order, then
    the 0-d values; one concatenation and one copy to the host."""
    flat = [v if v.dim() == 1 else v.reshape(-1) for v in vectors]
    if scalars:
        flat.append(torch.stack(scalars))
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


def _numpy_ok(dtype: torch.dtype) -> bool:
    return dtype in (torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                     torch.bool, torch.uint8, torch.int16, torch.int8)
