"""notebooks/real_world.ipynb through a real kernel: tutorial-style CNN and LSTM trainings
with validation loops come out clean, and nbdebug computed the held-out metrics itself."""

from __future__ import annotations

import json
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_real_world_trainings_are_clean_and_measured(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "real_world.ipynb", as_version=4)
    assert not any(c.get("outputs") for c in nb.cells), "notebooks are committed clean"
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    for name, val in (("cnn", "val_loader"), ("lstm", "seq_val")):
        report = json.loads((tmp_path / "build" / f"real_world-{name}.json").read_text())
        loud = [(f["check"], f["message"]) for f in report["findings"]
                if f["severity"] in ("problem", "warning")]
        assert loud == [], f"false alarm on a healthy {name}: {loud}"
        roles = {ld["name"]: ld["role"] for ld in report["run"]["loaders"]}
        assert roles[val] == "eval"
        rounds = report["timelines"][f"eval/{val}"]["values"]
        assert len(rounds) == 4 and rounds[-1]["acc"] > 0.5
