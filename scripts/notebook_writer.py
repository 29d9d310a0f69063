"""Write a notebook (no outputs) from (kind, source) cells: the notebooks stay reviewable
as code in diffs, and each make_*.py script lists only its cells."""

from __future__ import annotations

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src)
                for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def write(cells: list[tuple[str, str]], name: str) -> None:
    path = NOTEBOOKS / name
    nbformat.write(build(cells), path)
    print(f"wrote {path.name}")
