"""IPython magics: ``%%diagnose`` and ``%nbdebug``."""

from __future__ import annotations

from typing import Any

_REGISTERED: dict[int, Any] = {}


def register(ipython: Any) -> None:
    from .diagnose import DiagnoseMagics
    magics = DiagnoseMagics(ipython)
    ipython.register_magics(magics)
    _REGISTERED[id(ipython)] = magics


def unregister(ipython: Any) -> None:
    magics = _REGISTERED.pop(id(ipython), None)
    if magics is None:
        return
    table = ipython.magics_manager.magics
    for kind, names in magics.magics.items():
        for name in names:
            if table[kind].get(name) is not None and getattr(
                    table[kind][name], "__self__", None) is magics:
                del table[kind][name]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
