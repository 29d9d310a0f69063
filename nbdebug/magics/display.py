"""Where the report goes: the live dashboard in a notebook front end, text elsewhere.

A notebook front end is a kernel that can show widgets (ipykernel's shell). Terminal
IPython and scripts keep the plain-text report, so no widget machinery runs there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..report import Report

#: the last live dashboard of this kernel (its redraw count and cost, for measurements)
LAST_DASHBOARD: list[Any] = []


def in_notebook(shell: Any) -> bool:
    """True under a Jupyter kernel (JupyterLab, Notebook, VS Code, nbclient)."""
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return type(shell).__name__ == "ZMQInteractiveShell" or "ipykernel" in type(shell).__module__


def live_checks(check_ids: list[str]) -> Callable[[Any], Report]:
    """A report of the checks on what was seen so far, for the live checklist."""
    from ..checks import checklist, run_checks

    def build(obs: Any) -> Report:
        run = run_checks(obs, check_ids)
        return Report(findings=run.findings, checklist=checklist(run))
    return build


def attach_dashboard(session: Any, shell: Any, keep_live: bool) -> Any:
    """Open the live dashboard under the running cell and wire it to ``session``.

    Returns the Dashboard, or None outside a notebook front end, with ``--quiet``, or
    when ipywidgets cannot be used (then the text report is printed as before).
    """
    if session.settings.quiet or not in_notebook(shell):
        return None
    try:
        from ..ui.dashboard import Dashboard
        dash = Dashboard(live_report=live_checks(session.check_ids), keep_live=keep_live)
        dash.open()
    except Exception as exc:
        print(f"nbdebug: live dashboard unavailable ({type(exc).__name__}: {exc}); the "
              "report will be printed at the end", file=sys.stderr)
        return None
    LAST_DASHBOARD[:] = [dash]
    session.listeners.append(dash.update)
    session._show = dash.finish
    return dash


def show_report(shell: Any, report: Report | None) -> None:
    """``%nbdebug report``: HTML in a notebook, text elsewhere."""
    from ..ui.text import render_text
    if report is None:
        print("nbdebug: no diagnosis yet in this kernel; put %%diagnose above a training cell")
        return
    if in_notebook(shell):
        from IPython.display import display

        from ..ui.html import bundle
        from ..ui.plots import render_png
        display(bundle(report, render_png(report.timelines, report.findings)), raw=True)
    else:
        print(render_text(report))


def show_explain(shell: Any, key: Any, text: str, checks: list[tuple[str, str]],
                 title: str, about: str) -> None:
    """``%nbdebug explain N``: HTML in a notebook, text elsewhere."""
    if in_notebook(shell):
        from IPython.display import display

        from ..ui.html import render_explain
        display({"text/plain": text, "text/html": render_explain(key, title, about, checks)},
                raw=True)
    else:
        print(text)
