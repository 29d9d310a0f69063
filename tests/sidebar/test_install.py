"""The prebuilt sidebar is installed with the package: JupyterLab lists it enabled and OK."""

from __future__ import annotations

import re
import subprocess
import sys


def test_labextension_list_shows_the_sidebar_enabled_and_ok():
    out = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    line = next((ln for ln in text.splitlines() if "nbdebug-sidebar" in ln), "")
    assert "enabled" in line and "OK" in line, text


def test_the_package_points_jupyterlab_at_its_build():
    import pathlib

    import nbdebug
    (entry,) = nbdebug._jupyter_labextension_paths()
    built = pathlib.Path(nbdebug.__file__).parent / entry["src"] / "package.json"
    assert entry["dest"] == "nbdebug-sidebar"
    assert built.exists()
    assert '"name": "nbdebug-sidebar"' in built.read_text()
