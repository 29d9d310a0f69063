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
from ..report import ChecklistItem, Finding, Report, findings_by_point, reading_order
from .text import ICONS, evidence_words, fold_line, nothing_trained, overhead_text, summary_line

#: colours of JupyterLab's theme (light and dark), with fallbacks for pages without it
#: (nbconvert HTML, other front ends)
COLORS = {"problem": "var(--jp-error-color1,#c62828)",
          "warning": "var(--jp-warn-color1,#ef6c00)",
          "ok": "var(--jp-success-color1,#2e7d32)", "info": "var(--jp-info-color1,#1565c0)",
          "not_applicable": "var(--jp-ui-font-color2,#757575)",
          "not_checked": "var(--jp-ui-font-color2,#757575)",
          "pending": "var(--jp-ui-font-color2,#757575)"}
STYLE = """<style>
.nbdebug-report{font-family:var(--jp-ui-font-family,system-ui,-apple-system,Segoe UI,
 sans-serif);font-size:13px;line-height:1.4;max-width:1000px;
 color:var(--jp-content-font-color1,inherit)}
.nbdebug-report .nbd-head{font-weight:600;margin:4px 0 6px 0}
.nbdebug-report details{display:block;border-bottom:1px solid var(--jp-border-color2,#e0e0e0);
 padding:2px 0;margin:0}
.nbdebug-report summary{display:flex;align-items:baseline;gap:.3em;cursor:pointer;
 list-style:none;min-width:0}
.nbdebug-report summary::-webkit-details-marker{display:none}
.nbdebug-report summary::before{content:"\\25B8";flex:none;width:.9em;
 color:var(--jp-ui-font-color2,#757575)}
.nbdebug-report details[open]>summary::before{content:"\\25BE"}
.nbdebug-report .nbd-icon{flex:none;display:inline-block;width:1.3em;text-align:center;
 font-weight:700}
.nbdebug-report .nbd-key{flex:none;display:inline-block;min-width:2.6em;
 color:var(--jp-ui-font-color2,#555)}
.nbdebug-report .nbd-title{flex:1 1 auto;min-width:0}
.nbdebug-report .nbd-status{flex:none;margin-left:auto;padding-left:1em;white-space:nowrap}
.nbdebug-report .nbd-body{margin:4px 0 6px 2.6em}
.nbdebug-report .nbd-finding{border-left:3px solid var(--jp-border-color1,#ccc);
 padding:2px 8px;margin:4px 0}
.nbdebug-report .nbd-ev,.nbdebug-report .nbd-about,.nbdebug-report .nbd-dim{
 color:var(--jp-ui-font-color2,#555)}
.nbdebug-report .nbd-about{font-style:italic}
.nbdebug-report .nbd-fold>.nbd-body{margin-left:1.2em}
.nbdebug-report img{max-width:100%}
body[data-jp-theme-light="false"] .nbdebug-report img,
body[data-jp-theme-light="false"] .nbdebug-dashboard img{
 filter:invert(.9) hue-rotate(180deg)}
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
    """A finding: title, place and step, the message, the evidence in words, the fix."""
    color = COLORS.get(f.severity, "#555")
    parts = [f'<div class="nbd-finding" style="border-left-color:{color}">',
             f'<div><span class="nbd-icon" style="color:{color}">{esc(ICONS[f.severity])}'
             f"</span><b>{esc(f.title)}</b>"]
    if f.where:
        parts.append(f" in <code>{esc(f.where)}</code>")
    if f.step is not None:
        parts.append(f' <span class="nbd-dim">(step {esc(f.step)})</span>')
    parts.append(f"</div><div>{esc(f.message)}</div>")
    if f.evidence:
        parts.append(f'<div class="nbd-ev">Evidence: {esc(evidence_words(f.evidence))}</div>')
    if f.fix:
        parts.append(f"<div><b>Fix:</b> {esc(f.fix)}</div>")
    parts.append("</div>")
    return "".join(parts)


def render_item(item: ChecklistItem, found: list[Finding], opened: bool) -> str:
    """One checklist row; it opens to its findings, its reason and the article's advice."""
    color = COLORS.get(item.status, "#555")
    attr = " open" if opened else ""
    out = [f'<details class="nbd-item nbd-{esc(item.status)}" '
           f'data-point="{esc(item.point)}"{attr}><summary>'
           f'<span class="nbd-icon" style="color:{color}">'
           f"{esc(ICONS.get(item.status, '?'))}</span>"
           f'<span class="nbd-key">{esc(item.point)}</span>'
           f'<span class="nbd-title">{esc(item.title)}</span>'
           f'<span class="nbd-status" style="color:{color}">'
           f"{esc(item.status.replace('_', ' '))}</span></summary>"
           '<div class="nbd-body">']
    for f in found:
        out.append(render_finding(f))
    if item.reason:
        out.append(f"<div>{esc(item.reason)}</div>")
    about = point_explain(item.point)
    if about:
        out.append(f'<div class="nbd-about">{esc(about)}</div>')
    out.append("</div></details>")
    return "".join(out)


def _fold(kind: str, icon: str, color: str, label: str, rows: list[str]) -> str:
    return (f'<details class="nbd-fold nbd-fold-{kind}"><summary>'
            f'<span class="nbd-icon" style="color:{color}">{esc(icon)}</span>'
            f'<span class="nbd-title">{esc(label)}</span></summary>'
            f'<div class="nbd-body">{"".join(rows)}</div></details>')


def render_checklist(report: Report, open_findings: bool = True) -> str:
    """Problems and warnings first (opened), then the ok items folded into one line, then
    the items not applicable or not checked folded into another."""
    by_point = findings_by_point(report)
    flagged, ok, rest = reading_order(report)
    out = ['<div class="nbd-checklist">']
    out += [render_item(i, by_point.get(i.point, []), open_findings) for i in flagged]
    if ok:
        out.append(_fold("ok", ICONS["ok"], COLORS["ok"], fold_line(ok, "ok"),
                         [render_item(i, by_point.get(i.point, []), False) for i in ok]))
    if rest:
        out.append(_fold("rest", ICONS["not_checked"], COLORS["not_checked"],
                         fold_line(rest),
                         [render_item(i, by_point.get(i.point, []), False) for i in rest]))
    out.append("</div>")
    return "".join(out)


def png_tag(png: bytes, alt: str = "nbdebug plots") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def render_note(report: Report) -> str:
    """The one line of a cell that trained nothing (no plots, no checklist)."""
    return (f'{STYLE}<div class="nbdebug-report nbd-nothing">'
            f"nbdebug: {esc(report.notes[0])}.</div>")


def render_html(report: Report, png: bytes | None = None) -> str:
    """The whole static report: summary line, problems and warnings, the folded rest, the
    plots, notes and errors."""
    if nothing_trained(report):
        return render_note(report)
    from .plots import constant_facts
    facts = constant_facts(report.timelines)
    head = summary_line(report) + (f" · {facts}" if facts else "")
    out = [STYLE, '<div class="nbdebug-report">', f'<div class="nbd-head">{esc(head)}</div>']
    exc = report.run.get("exception")
    if exc:
        out.append(f"<div>The cell stopped with <code>{esc(exc)}</code>; the report covers "
                   "what ran before.</div>")
    out.append(render_checklist(report))
    if png:
        out.append(png_tag(png))
    out += [f'<div class="nbd-dim">note: {esc(n)}</div>' for n in report.notes]
    if report.errors:
        out.append(f'<div class="nbd-dim">{len(report.errors)} internal error(s) '
                   "while watching (training unaffected): "
                   f"{esc(report.errors[0].get('error', ''))}</div>")
    out.append("</div>")
    return "".join(out)


STATE_COLORS = {"running": COLORS["info"], "done": COLORS["ok"], "failed": COLORS["problem"],
                "interrupted": COLORS["warning"], "stopped": COLORS["warning"]}


def render_header(state: str, step: int, epoch: int, seconds: float,
                  overhead: float | None, extra: str = "", own: float | None = None) -> str:
    """The live dashboard's one-line header (``extra``: facts such as a constant lr;
    ``own``: nbdebug's own seconds, shown past 100%)."""
    color = STATE_COLORS.get(state, "#555")
    cost = "" if overhead is None else f" · {overhead_text(overhead, own)}"
    more = f" · {esc(extra)}" if extra else ""
    return (f'<div class="nbdebug-report"><b>nbdebug</b> · <span style="color:{color};'
            f'font-weight:600;white-space:nowrap" class="nbd-state">{esc(state)}</span> · '
            f'step <span class="nbd-step">{int(step)}</span> · epoch {int(epoch)} · '
            f"{seconds:.1f} s{esc(cost)}{more}</div>")


def render_explain(key: Any, title: str, text: str,
                   checks: Iterable[tuple[str, str]]) -> str:
    """``%nbdebug explain N`` in HTML: the point and what nbdebug checks for it."""
    items = "".join(f"<li><code>{esc(cid)}</code>: {esc(doc)}</li>" for cid, doc in checks)
    body = f"<ul>{items}</ul>" if items else "<p>nbdebug does not check this point yet.</p>"
    return (f'{STYLE}<div class="nbdebug-report"><div class="nbd-head">Point {esc(key)}: '
            f"{esc(title)}</div><p>{esc(text)}</p><div>nbdebug checks:</div>{body}</div>")


#: points per timeline in the report embedded in a notebook (the plots are drawn from the
#: full one; ``--save`` writes the full one)
EMBEDDED_POINTS = 120


def bundle(report: Report, png: bytes | None) -> dict[str, Any]:
    """The static display bundle that replaces the live dashboard when the cell ends.

    Small on purpose (it is saved in the notebook): the plots once (inside the HTML), the
    report JSON with downsampled timelines. A cell that trained nothing gets one line."""
    from ..report import downsampled
    from .text import render_text
    if nothing_trained(report):
        return {"text/plain": render_text(report), "text/html": render_note(report)}
    return {
        "text/plain": render_text(report),
        "text/html": render_html(report, png),
        "application/vnd.nbdebug.report+json": downsampled(report.to_dict(), EMBEDDED_POINTS),
    }
