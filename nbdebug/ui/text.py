"""The plain-text report: a summary line, problems and warnings with their evidence and fix,
then the ok items folded into one line and the rest (not applicable, not checked) into
another, with their reasons."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from ..report import Finding, Report, findings_by_point, reading_order

ICONS = {"problem": "✗", "warning": "!", "ok": "✓", "info": "i",
         "not_applicable": "-", "not_checked": "·", "pending": "…"}
WIDTH = 100


def _number(value: float) -> str:
    return f"{value:.4g}"


def word_value(value: Any, limit: int = 120) -> str:
    """One evidence value as words: numbers short, lists clipped, mappings as 'k v'."""
    if isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, float):
        text = _number(value)
    elif isinstance(value, (int, str)):
        text = str(value)
    elif isinstance(value, (list, tuple)):
        shown = [word_value(v, 30) for v in list(value)[:4]]
        text = ", ".join(shown) + (f", … ({len(value)} in all)" if len(value) > 4 else "")
        text = f"[{text}]"
    elif isinstance(value, dict):
        text = "; ".join(f"{_key(k)} {word_value(v, 40)}" for k, v in list(value.items())[:6])
        text = f"({text})"
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _key(key: Any) -> str:
    return str(key).replace("_", " ")


#: evidence a finding's message already tells in words: kept in the report's JSON for
#: tools, left out of the rendered evidence line
WORDED = {"replay"}


def evidence_words(ev: dict[str, Any], limit: int = 8) -> str:
    """The evidence of a finding as one line of words: ``step 17 · kind nan · ...``."""
    items = [(k, v) for k, v in ev.items() if k not in WORDED]
    parts = [f"{_key(k)} {word_value(v)}" for k, v in items[:limit]]
    more = len(items) - limit
    if more > 0:
        parts.append(f"and {more} more in the report")
    return " · ".join(parts)


def _wrap(label: str, text: str, indent: str = "      ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=f"{indent}{label}",
                         subsequent_indent=indent + " " * len(label))


def render_finding(f: Finding) -> list[str]:
    head = f"{f.title}" + (f" [{f.where}]" if f.where else "") + (
        f" (step {f.step})" if f.step is not None else "")
    if f.severity == "info":            # advice: one short line, the report has the rest
        first = f.message.split(". ")[0].rstrip(".")
        return _wrap("", f"i {head}: {first}.", indent="    ")
    lines = [f"    {ICONS[f.severity]} {head}"]
    lines += _wrap("", f.message)
    if f.evidence:
        lines += _wrap("evidence: ", evidence_words(f.evidence))
    if f.fix:
        lines += _wrap("fix: ", f.fix)
    return lines


def overhead_text(share: float, own: Any = None) -> str:
    """The overhead as shown, "nbdebug overhead 5.3%"; past 100% (a short cell, where
    drawing the report costs more than the training), its seconds too."""
    text = f"nbdebug overhead {share:.1%}"
    if share >= 1 and isinstance(own, (int, float)):
        text += f" ({own:.1f} s)"
    return text


def summary_line(report: Report) -> str:
    run = report.run
    n_p, n_w = len(report.problems), len(report.warnings)
    verdict = "no problems found" if not (n_p or n_w) else (
        f"{n_p} problem{'s' * (n_p != 1)}, {n_w} warning{'s' * (n_w != 1)}")
    state = run.get("status", "done")
    head = (f"nbdebug: {run.get('steps', 0)} steps, {run.get('epochs', 0)} epochs, "
            f"{run.get('seconds', 0.0):.1f} s")
    overhead = run.get("overhead")
    if isinstance(overhead, (int, float)):          # its own host time vs the rest
        head += ", " + overhead_text(overhead, run.get("overhead_seconds"))
    if state != "done":
        head += f" ({state})"
    return f"{head}: {verdict}"


def nothing_trained(report: Report) -> bool:
    """True for a cell that trained nothing: it gets one line, no report."""
    return report.nothing_trained()


def _key_of(point: Any) -> str:
    return f"{point:>2}" if isinstance(point, int) else str(point)


def fold_line(items: list[Any], what: str | None = None) -> str:
    """``14 ok: 1, 2, 3, ...``: a folded group of checklist items in one line; without
    ``what``, the count of each status (``3 pending, 2 not applicable: ...``)."""
    if what is None:
        counts: dict[str, int] = {}
        for i in items:
            counts[i.status] = counts.get(i.status, 0) + 1
        head = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
    else:
        head = f"{len(items)} {what}"
    return f"{head}: " + ", ".join(str(i.point) for i in items)


def render_text(report: Report) -> str:
    if nothing_trained(report):
        return f"nbdebug: {report.notes[0]}."
    lines = [summary_line(report)]
    by_point = findings_by_point(report)
    flagged, ok, rest = reading_order(report)
    kw = max((len(_key_of(i.point)) for i in flagged), default=2)
    tw = max((len(i.title) for i in flagged), default=40)
    for item in flagged:
        status = item.status.replace("_", " ")
        lines.append(f"  {ICONS.get(item.status, '?')} {_key_of(item.point):<{kw}} "
                     f"{item.title:<{tw}} {status}")
        for f in by_point.get(item.point, []):
            if f.severity in ("problem", "warning"):
                lines += render_finding(f)
    if ok:
        lines += _wrap("", fold_line(ok, "ok"), indent="  ✓ ")
        for item in ok:                 # advice on an ok item: one line under the fold
            for f in by_point.get(item.point, []):
                if f.severity == "info":
                    lines += render_finding(f)
    if rest:
        lines += _wrap("", fold_line(rest), indent="  · ")
        for item in rest:
            why = item.reason or item.status.replace("_", " ")
            lines += _wrap("", f"{_key_of(item.point)} {item.title}: {why}", indent="      ")
    for note in report.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
