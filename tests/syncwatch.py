"""Counts host syncs that nbdebug's own code makes, outside its flushes.

A TorchFunctionMode sees every ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()``,
``bool()``, ``float()``, ``int()`` of a tensor and ``.to()`` onto the CPU. A call counts when
the Python frame that made it lies in the nbdebug package and is not inside
``Pending.flush`` (the one place allowed to read values back, every K steps) or the end of
the session.
"""

from __future__ import annotations

import os
import sys

import torch
from torch.overrides import TorchFunctionMode

import nbdebug

PACKAGE = os.path.dirname(nbdebug.__file__)
SYNCS = {"item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"}
ALLOWED = {"flush", "finish", "_finish_observations", "_input_summary"}


class SyncWatch(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        is_sync = name in SYNCS or (name == "to" and any(
            a == "cpu" or (isinstance(a, torch.device) and a.type == "cpu") for a in args[1:]))
        if is_sync:
            self.calls += 1
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                frame, allowed = caller, False
                while frame is not None:
                    if frame.f_code.co_filename.startswith(PACKAGE) and \
                            frame.f_code.co_name in ALLOWED:
                        allowed = True
                        break
                    frame = frame.f_back
                if not allowed:
                    where = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
                    self.violations.append(f"{name} at {where} ({caller.f_code.co_name})")
        return func(*args, **(kwargs or {}))
