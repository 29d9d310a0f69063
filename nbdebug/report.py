"""The report: findings, the checklist and run facts; JSON schema ``nbdebug.report/1``.

Plain data, no torch. ``Report.to_dict`` is the contract of ``DESIGN.md``; fields may be
added, never renamed.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "nbdebug.report/1"
SEVERITIES = ("problem", "warning", "info")
STATUSES = ("ok", "warning", "problem", "not_applicable", "not_checked")


@dataclass
class Finding:
    check: str
    point: int | str
    severity: str
    title: str
    message: str
    fix: str
    where: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    step: int | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


@dataclass
class ChecklistItem:
    point: int | str
    title: str
    status: str
    checks: list[str] = field(default_factory=list)
    reason: str | None = None


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    checklist: list[ChecklistItem] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    timelines: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    schema: str = SCHEMA

    # -- queries -------------------------------------------------------------
    def status(self, point: int | str) -> str | None:
        for item in self.checklist:
            if item.point == point:
                return item.status
        return None

    def by_severity(self, *severities: str) -> list[Finding]:
        return [f for f in self.findings if f.severity in severities]

    @property
    def problems(self) -> list[Finding]:
        return self.by_severity("problem")

    @property
    def warnings(self) -> list[Finding]:
        return self.by_severity("warning")

    def finding(self, check: str) -> Finding | None:
        return next((f for f in self.findings if f.check == check), None)

    # -- JSON ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _clean({
            "schema": self.schema,
            "findings": [asdict(f) for f in self.findings],
            "checklist": [asdict(c) for c in self.checklist],
            "run": self.run,
            "timelines": self.timelines,
            "notes": self.notes,
            "errors": self.errors,
        })

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an nbdebug report (schema {data.get('schema')!r})")
        return cls(
            findings=[Finding(**f) for f in data.get("findings", [])],
            checklist=[ChecklistItem(**c) for c in data.get("checklist", [])],
            run=dict(data.get("run", {})),
            timelines=dict(data.get("timelines", {})),
            notes=list(data.get("notes", [])),
            errors=list(data.get("errors", [])),
        )

    @classmethod
    def from_json(cls, text: str) -> Report:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the JSON atomically: a reader never sees half a report."""
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".nbdebug-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.to_json())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings, tuples lists, numpy scalars floats."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            value = value.item()
        except Exception:
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (int, str, bool)):
        return value
    return str(value)
