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
#: the first note of a report whose cell trained nothing starts with this
NOTHING = "nothing to diagnose"
STATUSES = ("ok", "warning", "problem", "not_applicable", "not_checked")
#: the live view's checklist may also say "pending" (its check cannot judge yet); a final
#: report never holds it
LIVE_STATUSES = (*STATUSES, "pending")


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

    def nothing_trained(self) -> bool:
        """True for a cell that trained nothing: it gets one line, no report."""
        return bool(self.notes) and str(self.notes[0]).startswith(NOTHING)

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


# -- reading order (the renderers share it) ------------------------------------
FLAGGED = ("problem", "warning")
FOLDED = ("not_applicable", "not_checked")


def reading_order(report: Report) -> tuple[list[ChecklistItem], list[ChecklistItem],
                                             list[ChecklistItem]]:
    """The checklist as a person reads it: (problems then warnings, ok items, the items
    not applicable or not checked), each part in checklist order."""
    flagged = sorted((i for i in report.checklist if i.status in FLAGGED),
                     key=lambda i: FLAGGED.index(i.status))
    ok = [i for i in report.checklist if i.status == "ok"]
    rest = [i for i in report.checklist if i.status not in FLAGGED and i.status != "ok"]
    return flagged, ok, rest


def findings_by_point(report: Report) -> dict[Any, list[Finding]]:
    out: dict[Any, list[Finding]] = {}
    for f in report.findings:
        out.setdefault(f.point, []).append(f)
    return out


def downsampled(data: dict[str, Any], limit: int = 120) -> dict[str, Any]:
    """A copy of ``Report.to_dict()`` whose timelines keep at most ``limit`` points each
    (evenly spaced, first and last kept; the first non-finite value is kept in its place so
    the copy still shows where the run broke), values to 4 significant digits. For the
    report embedded in a notebook; ``--save`` writes the full one."""
    out = dict(data)
    series = data.get("timelines") or {}
    # a share of the number budget per series: wide series (a column per layer) get fewer
    # points, so that the copy stays small however many layers the model has
    share = NUMBERS // max(len(series), 1)
    out["timelines"] = {name: _rounded(_thin_series(
        s, max(MIN_POINTS, min(limit, share // _width(s))))) for name, s in series.items()}
    return out


#: numbers kept over all timelines of an embedded report, and the fewest points per series
NUMBERS = 3000
MIN_POINTS = 20


def _width(series: Any) -> int:
    values = series.get("values") if isinstance(series, dict) else None
    if not isinstance(values, list) or not values:
        return 1
    first = values[-1]
    return max(len(first), 1) if isinstance(first, (list, dict)) else 1


def _rounded(value: Any, digits: int = 4) -> Any:
    """Floats to ``digits`` significant digits (plots need no more; JSON gets 3x smaller)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: (_rounded(v, digits) if k != "steps" else v) for k, v in value.items()}
    return value


def _thin_series(series: Any, limit: int) -> Any:
    if not isinstance(series, dict):
        return series
    steps, values = series.get("steps"), series.get("values")
    if not isinstance(steps, list) or not isinstance(values, list) or len(steps) <= limit \
            or len(values) != len(steps):
        return series
    n = len(steps)
    keep = {round(i * (n - 1) / (limit - 1)) for i in range(limit)}
    bad = [i for i, v in enumerate(values) if _not_finite(v)]
    keep.update(bad[:1])          # the first non-finite value marks where the run broke
    idx = sorted(keep)
    return {**series, "steps": [steps[i] for i in idx], "values": [values[i] for i in idx],
            "downsampled_from": n}


def _not_finite(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("nan", "inf", "-inf")
    if isinstance(value, float):
        return not math.isfinite(value)
    return False
