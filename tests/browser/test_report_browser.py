"""The static report in a real JupyterLab and Chromium, measured: the checklist rows'
layout (JupyterLab styles ``details`` as flex; the report resets it), the dark theme's
colours, and the one line of a cell that trains nothing. Takes the README's pictures of
the report in the light and the dark theme (``docs/``) on every run."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from notebook_util import notebook

from .lab import IRIS, open_notebook, run_all

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
#: the notebook on view (the server restores other notebooks of earlier tests, hidden)
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"

SETUP = IRIS + """
model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)         # planted: no momentum
"""

TRAIN = """
%%diagnose
for epoch in range(20):
    for xb, yb in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
print("trained")
"""

NOTHING = """
%%diagnose
total = sum(range(10))
print("no training here", total)
"""

#: JS: the geometry of every checklist row of the report in cell ``i``
ROWS = """i => {
  const cell = window.jupyterapp.shell.currentWidget.content.widgets[i].node;
  const report = cell.querySelector('.jp-OutputArea .nbdebug-report');
  report.querySelectorAll('details.nbd-fold').forEach(d => { d.open = true; });
  const box = e => e.getBoundingClientRect();
  return [...report.querySelectorAll('details.nbd-item')].map(d => {
    const s = d.querySelector(':scope > summary');
    const t = s.querySelector('.nbd-title'), st = s.querySelector('.nbd-status');
    const body = d.querySelector(':scope > .nbd-body');
    return {point: d.dataset.point, open: d.open, display: getComputedStyle(d).display,
            summary: [box(s).left, box(s).right, box(s).width],
            title: [box(t).left, box(t).right, box(t).width, box(t).top],
            status: [box(st).left, box(st).right, box(st).top],
            body: d.open ? box(body).width : null, report: box(report).width};
  });
}"""


def _shot(element, name: str, docs: bool = True) -> None:
    """The README's picture ``docs/NAME`` (and a copy under $NBDEBUG_SHOTS, if set, for
    before/after comparisons; ``docs=False``: that copy only)."""
    extra = os.environ.get("NBDEBUG_SHOTS")
    if docs:
        DOCS.mkdir(exist_ok=True)
        element.screenshot(path=str(DOCS / name), timeout=60_000)
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        if docs:
            shutil.copy(DOCS / name, Path(extra) / name)
        else:
            element.screenshot(path=str(Path(extra) / name), timeout=60_000)


def _luminance(css: str) -> float:
    parts = [float(p) for p in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    return sum(w * p / 255 for w, p in zip((0.2126, 0.7152, 0.0722), parts))


def test_report_rows_dark_theme_and_the_no_training_cell(lab, page):
    import nbformat
    nbformat.write(notebook(SETUP, TRAIN, NOTHING), lab.root / "report.ipynb")
    open_notebook(page, lab, "report.ipynb")
    run_all(page)
    page.wait_for_selector(f"{CURRENT} .jp-Cell:nth-child(3) .nbd-nothing",
                           timeout=150_000)
    report = page.query_selector(f"{CURRENT} .jp-Cell:nth-child(2) .nbdebug-report")
    report.scroll_into_view_if_needed()
    _shot(report, "report.png")

    rows = page.evaluate(ROWS, 1)
    assert {r["point"] for r in rows} >= {"6", "8", "13"}
    flagged = [r for r in rows if r["open"]]
    assert flagged and [r["point"] for r in rows[:len(flagged)]] == [r["point"]
                                                                    for r in flagged]
    for r in rows:
        s_left, s_right, s_width = r["summary"]
        t_left, t_right, t_width, t_top = r["title"]
        st_left, st_right, st_top = r["status"]
        assert r["display"] == "block", r
        assert abs(st_right - s_right) <= 2, r          # status right-aligned
        assert st_left >= t_right - 1, r                # never runs into the title
        assert abs(st_top - t_top) <= 3, r              # on the title's line
        assert t_width >= 0.5 * s_width, r              # the title has the row's width
        if r["open"]:
            assert r["body"] >= 0.7 * r["report"], r    # an opened row is not squeezed

    # a cell that trains nothing: one line, no plots, no checklist
    nothing = page.query_selector(f"{CURRENT} .jp-Cell:nth-child(3) .jp-OutputArea")
    text = nothing.inner_text()
    assert "nbdebug: nothing to diagnose" in text and "no training here 45" in text
    assert nothing.query_selector("img") is None
    assert nothing.query_selector(".nbd-checklist") is None
    _shot(nothing, "no-training.png", docs=False)
    page.evaluate("() => document.querySelectorAll('.nbdebug-report details.nbd-fold')"
                  ".forEach(d => { d.open = false; })")

    # the dark theme: light text, the plots inverted to match, no white block
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Dark'})")
    page.wait_for_selector('body[data-jp-theme-light="false"]', state="attached",
                           timeout=30_000)
    page.wait_for_timeout(1000)                         # the theme's CSS to apply
    colours = page.evaluate("""() => {
        const r = window.jupyterapp.shell.currentWidget.node.querySelector(
            '.jp-Cell:nth-child(2) .nbdebug-report');
        const area = r.closest('.jp-OutputArea-output');
        let bg = getComputedStyle(area).backgroundColor, node = area;
        while (bg === 'rgba(0, 0, 0, 0)' && node.parentElement) {
            node = node.parentElement; bg = getComputedStyle(node).backgroundColor; }
        return {text: getComputedStyle(r.querySelector('.nbd-head')).color,
                title: getComputedStyle(r.querySelector('.nbd-title')).color,
                background: bg,
                filter: getComputedStyle(r.querySelector('img')).filter,
                problem: getComputedStyle(r.querySelector('.nbd-problem .nbd-status')).color};
    }""")
    _shot(report, "report-dark.png")
    assert _luminance(colours["background"]) < 0.3, colours
    assert _luminance(colours["text"]) > 0.6 and _luminance(colours["title"]) > 0.6, colours
    assert "invert" in colours["filter"], colours
    assert _luminance(colours["problem"]) > 0.3, colours   # the red stays readable
    page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme',"
                  " {theme: 'JupyterLab Light'})")
