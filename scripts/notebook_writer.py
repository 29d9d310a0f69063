"""Write a notebook (no outputs) from (kind, source) cells: the notebooks stay reviewable
as code in diffs, and each make_*.py script lists only its cells.

Cell ids come from the cells' contents, so writing the same cells again gives the same
file (nbformat would draw random ids): re-running a make_*.py script leaves no diff.
"""

from __future__ import annotations

import hashlib
import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


def cell_id(kind: str, source: str, taken: set[str]) -> str:
    """A stable id: a hash of the cell, with a suffix when the same cell comes twice."""
    base = hashlib.sha1(f"{kind}\n{source}".encode()).hexdigest()[:8]
    cid, n = base, 1
    while cid in taken:
        cid, n = f"{base}-{n}", n + 1
    taken.add(cid)
    return cid


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    taken: set[str] = set()
    nb.cells = [(new_markdown_cell if kind == "md" else new_code_cell)(
                    src, id=cell_id(kind, src, taken))
                for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write(cells: list[tuple[str, str]], name: str) -> None:
    path = NOTEBOOKS / name
    nb = build(cells)
    nbformat.validate(nb)
    nbformat.write(nb, path)
    print(f"wrote {path.name}")
