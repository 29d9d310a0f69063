"""Options shared by ``%%diagnose``, ``nbdebug.diagnose()`` and ``python -m nbdebug``.

Validation lives here so that every entry point says the same one-line thing about a
bad value. Errors are ``OptionError`` (a ValueError); the magic turns them into UsageError.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EVERY = 10


class OptionError(ValueError):
    """A user mistake in the options; its message says how to fix it."""


@dataclass
class Settings:
    #: None: DEFAULT_EVERY, stretched by nbdebug when sampled steps cost too much
    every: int | None = None
    checks: str = "default"
    save: str | None = None
    quiet: bool = False
    model: Any = None                 # a module, or a variable name to look up
    optimizer: Any = None
    loaders: list[Any] = field(default_factory=list)
    #: run the pre-flight experiments at the first optimizer step (nbdebug.preflight)
    preflight: bool = False
    #: their time budget in seconds; None: the smaller of 30 s and 20% of an epoch
    preflight_budget: Any = None


def positive_int(value: Any, flag: str = "--every") -> int:
    try:
        n = int(value)
        if isinstance(value, float) and n != value:
            raise ValueError
    except (TypeError, ValueError):
        raise OptionError(f"{flag} needs a whole number of steps, like {flag} 10 "
                          f"(got {value!r})") from None
    if n < 1:
        raise OptionError(f"{flag} must be 1 or more (got {n}): statistics are taken every "
                          "N steps")
    return n


def budget_seconds(value: Any, flag: str = "--preflight-budget") -> float | None:
    """A positive number of seconds, or None."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"{flag} needs a number of seconds, like {flag} 20 "
                          f"(got {value!r})") from None
    if not (math.isfinite(seconds) and seconds > 0):
        raise OptionError(f"{flag} must be a positive number of seconds (got {value!r})")
    return seconds


def resolve(value: Any, namespace: dict[str, Any], flag: str, kind: type, what: str) -> Any:
    """An object given directly, or by its variable name in ``namespace``."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in namespace:
            raise OptionError(f"{flag} {value}: no variable named {value!r} here; define "
                              f"the {what} first, or leave {flag} out to let nbdebug find it")
        obj = namespace[value]
        label = value
    else:
        obj, label = value, type(value).__name__
    if not isinstance(obj, kind):
        raise OptionError(f"{flag} {label}: that is a {type(obj).__name__}, not a {what} "
                          f"({kind.__module__}.{kind.__qualname__})")
    return obj


def validate_checks(spec: str | None) -> list[str]:
    from .checks import select
    try:
        return select(spec)
    except ValueError as exc:
        raise OptionError(f"--checks: {exc}") from None
