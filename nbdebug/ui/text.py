"""The plain-text report: a compact checklist, problems and warnings first."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from ..report import Finding, Report

ICONS = {"problem": "✗", "warning": "!", "ok": "✓", "info": "i",
         "not_applicable": "-", "not_checked": "·"}
_ORDER = {"problem": 0, "warning": 1, "ok": 2, "not_applicable": 3, "not_checked": 4}
WIDTH = 100


def _evidence(ev: dict[str, Any], limit: int = 6) -> str:
    parts = []
    for key, value in list(ev.items())[:limit]:
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, (list, tuple)) and len(value) > 4:
            text = json.dumps(list(value[:4]), default=str)[:-1] + ", ...]"
        else:
            text = json.dumps(value, default=str)
        parts.append(f"{key}={text}")
    return ", ".join(parts)


def _wrap(label: str, text: str, indent: str = "      ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"{indent}{label}",
                         subsequent_indent=indent + " " * len(label))


def render_finding(f: Finding) -> list[str]:
    head = f"{f.title}" + (f" [{f.where}]" if f.where else "")
    if f.severity == "info":            # advice: one short line, the report has the rest
        first = f.message.split(". ")[0].rstrip(".")
        return _wrap("", f"i {head}: {first}.", indent="    ")
    lines = [f"    {ICONS[f.severity]} {head}"]
    lines += _wrap("", f.message)
    if f.evidence:
        lines += _wrap("evidence: ", _evidence(f.evidence))
    if f.fix:
        lines += _wrap("fix: ", f.fix)
    return lines


def summary_line(report: Report) -> str:
    run = report.run
    n_p, n_w = len(report.problems), len(report.warnings)
    verdict = "no problems found" if not (n_p or n_w) else (
        f"{n_p} problem{'s' * (n_p != 1)}, {n_w} warning{'s' * (n_w != 1)}")
    state = run.get("status", "done")
    head = (f"nbdebug: {run.get('steps', 0)} steps, {run.get('epochs', 0)} epochs, "
            f"{run.get('seconds', 0.0):.1f} s")
    overhead = run.get("overhead")
    if isinstance(overhead, (int, float)):
        head += f", nbdebug overhead {overhead:.1%}"      # its own host time vs the rest
    if state != "done":
        head += f" ({state})"
    return f"{head}: {verdict}"


def render_text(report: Report) -> str:
    if report.notes and report.notes[0].startswith("nothing to diagnose"):
        return f"nbdebug: {report.notes[0]}."
    lines = [summary_line(report)]
    by_point: dict[Any, list[Finding]] = {}
    for f in report.findings:
        by_point.setdefault(f.point, []).append(f)
    items = sorted(report.checklist, key=lambda c: _ORDER.get(c.status, 9))
    keys = [f"{i.point:>2}" if isinstance(i.point, int) else str(i.point) for i in items]
    kw = max((len(k) for k in keys), default=5)
    tw = max((len(i.title) for i in items), default=42)
    for item, key in zip(items, keys):
        status = item.status.replace("_", " ")
        lines.append(f"  {ICONS.get(item.status, '?')} {key:<{kw}} {item.title:<{tw}} {status}")
        for f in by_point.get(item.point, []):
            if f.severity in ("problem", "warning") or item.status == "ok":
                lines += render_finding(f)
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
