"""Shared fixtures: a real IPython shell with nbdebug loaded, and small trainings."""

from __future__ import annotations

import textwrap

import pytest


@pytest.fixture
def ip():
    """A real InteractiveShell with ``%load_ext nbdebug``; a fresh namespace per test."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "nbdebug")
    yield shell
    shell.run_line_magic("unload_ext", "nbdebug")
    shell.reset(new_session=False)


@pytest.fixture
def notebook_frontend(monkeypatch):
    """%%diagnose opens the live Dashboard here as it does under a Jupyter kernel. These
    cells train for well under a second: their first live frame is drawn at once (a real
    notebook waits ``FIRST_REDRAW_SECONDS`` of the cell for it)."""
    from nbdebug.magics import display as nb_display
    from nbdebug.ui import dashboard
    monkeypatch.setattr(nb_display, "in_notebook", lambda shell: True)
    monkeypatch.setattr(dashboard, "FIRST_REDRAW_SECONDS", 0.0)
    nb_display.LAST_DASHBOARD.clear()
    return nb_display


def run_cell(shell, code: str):
    """Run ``code`` (dedented) as a cell; returns IPython's ExecutionResult."""
    return shell.run_cell(textwrap.dedent(code).strip("\n"), store_history=True)


def diagnose_cell(shell, body: str, flags: str = "--quiet"):
    """Run ``body`` under ``%%diagnose FLAGS``; returns (ExecutionResult, Report)."""
    import nbdebug

    cell = f"%%diagnose {flags}\n" + textwrap.dedent(body).strip("\n")
    result = shell.run_cell(cell, store_history=True)
    return result, nbdebug.last_report()
