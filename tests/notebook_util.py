"""Build and run small notebooks through a real kernel (nbclient)."""

from __future__ import annotations

import textwrap
from typing import Any

import nbformat

REPORT_MIME = "application/vnd.nbdebug.report+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def notebook(*cells: str) -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(textwrap.dedent(c).strip("\n")) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def execute(nb: Any, timeout: int = 180, allow_errors: bool = True) -> Any:
    from nbclient import NotebookClient
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   allow_errors=allow_errors).execute()
    return nb


def display_outputs(cell: Any) -> list[dict]:
    return [o for o in cell.outputs if o.output_type in ("display_data", "execute_result")]


def stream_text(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def output_text(cell) -> str:
    """All text a cell showed: streams, and the text/plain of displays and results."""
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append(out["text"])
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)
