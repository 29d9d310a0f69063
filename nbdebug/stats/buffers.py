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
            flat = [items[i][1].detach().reshape(-1).to(torch.float64) for i in idx]
            joined = torch.cat(flat)
            if device.type == "cuda":
                buf = torch.empty(joined.shape, dtype=joined.dtype, pin_memory=True)
                buf.copy_(joined, non_blocking=True)
                torch.cuda.current_stream(device).synchronize()
                arr = buf.numpy()
            else:
                arr = joined.cpu().numpy()
            offset = 0
            for i, t in zip(idx, flat):
                n = t.numel()
                host[i] = arr[offset:offset + n].copy()
                offset += n
        failed: Exception | None = None
        for (step, value, sink), arr in zip(items, host):
            try:
                sink(step, arr if value.dim() else arr.reshape(()))
            except Exception as exc:      # one bad sink must not drop the others' values
                failed = failed or exc
        if failed is not None:
            raise failed                  # the caller records it as an internal error
