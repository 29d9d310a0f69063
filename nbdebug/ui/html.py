"""The HTML report: summary, checklist with findings, plots; self-contained, no script.

Every string that is not a literal of this module goes through ``esc`` (module, parameter
and loader names, messages, evidence, paths: all may hold user text). The markup works
without JavaScript, so it survives ``nbconvert --to html`` and sanitising front ends:
``<details>`` opens a finding, the plots are an embedded PNG.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable
from typing import Any

from ..points import explain as point_explain
from ..report import Finding, Report
from .text import ICONS, summary_line

COLORS = {"problem": "#c62828", "warning": "#ef6c00", "ok": "#2e7d32", "info": "#1565c0",
          "not_applicable": "#9e9e9e", "not_checked": "#9e9e9e"}
STYLE = """<style>
.nbdebug-report{font-family:system-ui,-apple-system,Segoe UI,sans-serif;font-size:13px;
 line-height:1.35;max-width:1000px}
.nbdebug-report .nbd-head{font-weight:600;margin:4px 0 6px 0}
.nbdebug-report details{border-bottom:1px solid #eee;padding:2px 0}
.nbdebug-report summary{cursor:pointer;list-style-position:inside}
.nbdebug-report .nbd-icon{display:inline-block;width:1.3em;text-align:center;font-weight:700}
.nbdebug-report .nbd-key{display:inline-block;min-width:3.2em;color:#555}
.nbdebug-report .nbd-status{float:right;color:#555}
.nbdebug-report .nbd-body{margin:4px 0 6px 2.6em}
.nbdebug-report .nbd-finding{border-left:3px solid #ccc;padding:2px 8px;margin:4px 0}
.nbdebug-report table.nbd-ev{border-collapse:collapse;font-size:12px;margin:2px 0}
.nbdebug-report table.nbd-ev td{padding:1px 8px 1px 0;vertical-align:top;text-align:left}
.nbdebug-report .nbd-about{color:#555;font-style:italic}
.nbdebug-report img{max-width:100%}
</style>"""


def esc(value: Any) -> str:
    """Text for HTML: escaped, quotes included (safe in attributes too)."""
    return html.escape(str(value), quote=True)


def _value(value: Any, limit: int = 200) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def render_finding(f: Finding) -> str:
    color = COLORS.get(f.severity, "#555")
    parts = [f'<div class="nbd-finding" style="border-left-color:{color}">',
             f'<div><span class="nbd-icon" style="color:{color}">{esc(ICONS[f.severity])}'
             f"</span><b>{esc(f.title)}</b>"]
    if f.where:
        parts.append(f" <code>{esc(f.where)}</code>")
    if f.step is not None:
        parts.append(f" <span style=\"color:#777\">(step {esc(f.step)})</span>")
    parts.append(f"</div><div>{esc(f.message)}</div>")
    if f.evidence:
        rows = "".join(f"<tr><td>{esc(k)}</td><td><code>{esc(_value(v))}</code></td></tr>"
                       for k, v in f.evidence.items())
        parts.append(f'<table class="nbd-ev">{rows}</table>')
    if f.fix:
        parts.append(f"<div><b>Fix:</b> {esc(f.fix)}</div>")
    parts.append("</div>")
    return "".join(parts)


def render_checklist(report: Report, open_findings: bool = True) -> str:
    """The checklist in report order; each item opens to its findings and explanation."""
    by_point: dict[Any, list[Finding]] = {}
    for f in report.findings:
        by_point.setdefault(f.point, []).append(f)
    out = ['<div class="nbd-checklist">']
    for item in report.checklist:
        color = COLORS.get(item.status, "#555")
        found = by_point.get(item.point, [])
        flagged = item.status in ("problem", "warning")
        attr = " open" if open_findings and flagged else ""
        out.append(f'<details class="nbd-item nbd-{esc(item.status)}" '
                   f'data-point="{esc(item.point)}"{attr}><summary>'
                   f'<span class="nbd-icon" style="color:{color}">'
                   f"{esc(ICONS.get(item.status, '?'))}</span>"
                   f'<span class="nbd-key">{esc(item.point)}</span>{esc(item.title)}'
                   f'<span class="nbd-status" style="color:{color}">'
                   f"{esc(item.status.replace('_', ' '))}</span></summary>"
                   '<div class="nbd-body">')
        for f in found:
            out.append(render_finding(f))
        if item.reason:
            out.append(f"<div>{esc(item.reason)}</div>")
        about = point_explain(item.point)
        if about:
            out.append(f'<div class="nbd-about">{esc(about)}</div>')
        out.append("</div></details>")
    out.append("</div>")
    return "".join(out)


def png_tag(png: bytes, alt: str = "nbdebug plots") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def render_html(report: Report, png: bytes | None = None) -> str:
    """The whole static report: summary line, plots, checklist, notes and errors."""
    out = [STYLE, '<div class="nbdebug-report">',
           f'<div class="nbd-head">{esc(summary_line(report))}</div>']
    exc = report.run.get("exception")
    if exc:
        out.append(f"<div>The cell stopped with <code>{esc(exc)}</code>; the report covers "
                   "what ran before.</div>")
    if png:
        out.append(png_tag(png))
    out.append(render_checklist(report))
    out += [f"<div>note: {esc(n)}</div>" for n in report.notes]
    if report.errors:
        out.append(f"<div style=\"color:#777\">{len(report.errors)} internal error(s) "
                   "while watching (training unaffected): "
                   f"{esc(report.errors[0].get('error', ''))}</div>")
    out.append("</div>")
    return "".join(out)


def render_header(state: str, step: int, epoch: int, seconds: float,
                  overhead: float | None) -> str:
    """The live dashboard's one-line header."""
    color = {"running": "#1565c0", "done": "#2e7d32", "failed": "#c62828",
             "interrupted": "#ef6c00", "stopped": "#ef6c00"}.get(state, "#555")
    cost = "" if overhead is None else f" · nbdebug overhead {overhead:.1%}"
    return (f'<div class="nbdebug-report"><b>nbdebug</b> · <span style="color:{color};'
            f'font-weight:600" class="nbd-state">{esc(state)}</span> · step '
            f'<span class="nbd-step">{int(step)}</span> · epoch {int(epoch)} · '
            f"{seconds:.1f} s{esc(cost)}</div>")


def render_explain(key: Any, title: str, text: str,
                   checks: Iterable[tuple[str, str]]) -> str:
    """``%nbdebug explain N`` in HTML: the point and what nbdebug checks for it."""
    items = "".join(f"<li><code>{esc(cid)}</code>: {esc(doc)}</li>" for cid, doc in checks)
    body = f"<ul>{items}</ul>" if items else "<p>nbdebug does not check this point yet.</p>"
    return (f'{STYLE}<div class="nbdebug-report"><div class="nbd-head">Point {esc(key)}: '
            f"{esc(title)}</div><p>{esc(text)}</p><div>nbdebug checks:</div>{body}</div>")


def bundle(report: Report, png: bytes | None) -> dict[str, Any]:
    """The static display bundle that replaces the live dashboard when the cell ends."""
    from .text import render_text
    data: dict[str, Any] = {
        "text/plain": render_text(report),
        "text/html": render_html(report, png),
        "application/vnd.nbdebug.report+json": report.to_dict(),
    }
    if png:
        data["image/png"] = base64.b64encode(png).decode("ascii")
    return data
