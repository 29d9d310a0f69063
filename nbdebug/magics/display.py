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
    from ..ui.live import live_report
    return lambda obs: live_report(obs, check_ids)


def attach_dashboard(session: Any, shell: Any, keep_live: bool) -> Any:
    """Open the live dashboard under the running cell and wire it to ``session``.

    Returns the Dashboard, or None outside a notebook front end, with ``--quiet``, or
    when ipywidgets cannot be used (then the text report is printed as before).
    """
    if session.settings.quiet or not session.watching or not in_notebook(shell):
        return None
    try:
        from ..ui.dashboard import Dashboard
    except ImportError as exc:          # no ipywidgets here: not a fault of nbdebug
        print(f"nbdebug: live dashboard unavailable ({type(exc).__name__}: {exc}); the "
              "report will be printed at the end", file=sys.stderr)
        return None
    try:
        dash = Dashboard(live_report=live_checks(session.check_ids), keep_live=keep_live)
        dash.open()
    except Exception:
        # a bug of the live view: listed in the report and in its one line at the end
        session.internal_error("live dashboard")
        return None
    LAST_DASHBOARD[:] = [dash]
    session.listeners.append(dash.update)
    session.show_with(dash.finish)
    return dash


def show_report(shell: Any, report: Report | None) -> None:
    """``%nbdebug report``: HTML in a notebook, text elsewhere; a renderer that fails gives
    one line and the text (never a traceback into the cell)."""
    from ..ui.text import render_text
    if report is None:
        print("nbdebug: no diagnosis yet in this kernel; put %%diagnose above a training cell")
        return
    failed: BaseException | None = None
    if in_notebook(shell):
        try:
            from IPython.display import display

            from ..ui.html import bundle
            from ..ui.plots import render_png
            display(bundle(report, render_png(report.timelines, report.findings)), raw=True)
            return
        except Exception as exc:
            failed = exc
    try:
        text = render_text(report)
    except Exception as exc:
        _render_failed(failed or exc)
        return
    if failed is not None:
        _render_failed(failed)
    print(text)


def show_explain(shell: Any, key: Any, text: str, checks: list[tuple[str, str]],
                 title: str, about: str) -> None:
    """``%nbdebug explain N``: HTML in a notebook, text elsewhere."""
    if in_notebook(shell):
        try:
            from IPython.display import display

            from ..ui.html import render_explain
            display({"text/plain": text,
                     "text/html": render_explain(key, title, about, checks)}, raw=True)
            return
        except Exception as exc:
            _render_failed(exc)
    print(text)


def _render_failed(exc: BaseException) -> None:
    """The one line about a renderer that failed in ``%nbdebug``."""
    from ..session import _one_line
    print(f"nbdebug: could not render this ({_one_line(f'{type(exc).__name__}: {exc}')}); "
          "an internal error, nothing else is affected", file=sys.stderr)
