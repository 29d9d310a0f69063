"""The Python API: ``with nbdebug.diagnose(...): train()``; the magic is a thin layer on it."""

from __future__ import annotations

import sys
from typing import Any, Iterable

from .options import Settings
from .session import Session, last_report, open_session


def diagnose(*, every: int | None = None, checks: str = "default", save: str | None = None,
             quiet: bool = False, model: Any = None, optimizer: Any = None,
             loaders: Iterable[Any] = (), namespace: dict[str, Any] | None = None,
             preflight: bool = False, preflight_budget: float | None = None) -> Session:
    """Watch the training run inside the ``with`` block and report on it at the end.

    ``model``, ``optimizer`` and ``loaders`` are optional: objects, or variable names
    looked up in ``namespace`` (by default the caller's globals and locals). Without them
    nbdebug finds what the code trains. ``preflight`` runs the pre-flight experiments on
    copies at the first optimizer step (``preflight_budget`` seconds at most). The report is printed (unless ``quiet``), written
    to ``save`` as JSON, and returned by ``nbdebug.last_report()``.
    """
    if namespace is None:
        frame = sys._getframe(1)
        namespace = {**frame.f_globals, **frame.f_locals}
    settings = Settings(every=every, checks=checks, save=save, quiet=quiet, model=model,
                        optimizer=optimizer, loaders=list(loaders), preflight=preflight,
                        preflight_budget=preflight_budget)
    return open_session(settings, namespace)


__all__ = ["diagnose", "last_report"]
