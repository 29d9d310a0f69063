"""nbdebug's own internal errors: one record format, one collector.

Invariant 3: a failure inside nbdebug is caught, the training goes on, and the report
lists it. Every layer (capture, the session, the checks, the distributed merger) records
into an ``ErrorLog`` with ``record`` (from an ``except`` block) or ``add`` (a message).
Importing this module is cheap: no torch.
"""

from __future__ import annotations

import sys
import traceback

#: entries one log keeps: a fault repeated on every step is listed once per place anyway
LIMIT = 20


def one_line(text: str, limit: int = 200) -> str:
    """``text`` on one line of at most ``limit`` characters (messages may hold newlines)."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def entry(where: str) -> dict[str, str]:
    """The record of the exception being handled (call from ``except``)."""
    exc = sys.exc_info()[1]
    tb = traceback.format_exc()
    text = f"{type(exc).__name__}: {exc}" if exc is not None else (
        tb.strip().splitlines()[-1] if tb.strip() else "unknown error")
    return {"where": where, "error": one_line(text), "traceback": tb}


class ErrorLog:
    """Internal errors of one diagnosis, in the order they happened (at most ``LIMIT``)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, str]] = []

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def record(self, where: str) -> None:
        """Record the exception being handled (call from ``except``)."""
        if len(self.entries) < LIMIT:
            self.entries.append(entry(where))

    def append(self, record: dict[str, str]) -> None:
        """Record an entry made elsewhere (``where``, ``error``, ``traceback``)."""
        if len(self.entries) < LIMIT:
            self.entries.append(record)

    def add(self, where: str, error: str, traceback_text: str = "") -> None:
        """Record an error known only by its message (a clean-up that failed, say)."""
        if len(self.entries) < LIMIT:
            self.entries.append({"where": where, "error": one_line(error),
                                 "traceback": traceback_text or error})
