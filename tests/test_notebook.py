"""The quickstart notebook through a real kernel (nbclient), as `make demo` runs it."""

from __future__ import annotations

import json
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

from notebook_util import output_text

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quickstart_flags_the_planted_bugs_and_passes_the_fixed_training(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in nb.cells), "notebooks are committed clean"
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    buggy = json.loads((tmp_path / "build" / "quickstart-report.json").read_text())
    fixed = json.loads((tmp_path / "build" / "quickstart-fixed.json").read_text())
    status = {str(c["point"]): c["status"] for c in buggy["checklist"]}
    assert status["6"] == "problem" and status["17"] == "problem"
    # plain SGD is advice: an info note, the item ok, while the run shows no stall of its own
    assert status["8"] == "ok" and any(
        f["check"] == "sgd-momentum" and f["severity"] == "info" for f in buggy["findings"])
    loud = [f for f in fixed["findings"] if f["severity"] in ("problem", "warning")]
    assert loud == [] and fixed["run"]["status"] == "done"
    # the printed checklist is in the cell's saved output
    text = output_text(nb.cells[5])
    assert "Training data not shuffled" in text
