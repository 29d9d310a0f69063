"""Summaries that several checks read from the same observations (the loss's shape, how
the batches are mixed, the update ratios), computed once while ``run_checks`` runs them
all."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Callable, Iterator

_memo: contextvars.ContextVar[dict[Any, Any] | None] = contextvars.ContextVar(
    "nbdebug_checks_memo", default=None)


@contextlib.contextmanager
def computed_once() -> Iterator[None]:
    """Within this block, ``once`` computes each summary a single time."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def once(key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()``, or the value it gave for ``key`` earlier in the same block (its
    result must not be changed by a caller)."""
    memo = _memo.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]
