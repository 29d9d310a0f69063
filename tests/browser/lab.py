"""A real JupyterLab and a headless Chromium for browser tests; reusable by any test.

``running_lab(root)`` starts ``jupyter lab`` from this Python on a free local port with a
random token and a throwaway settings folder (no news toast, no update check), and waits
for this server's own "is running at" line. ``chromium(playwright)`` launches the system
Chromium (``scripts/ensure-chromium.sh`` installs it) with flags that keep it offline.
``open_notebook`` / ``run_all`` drive the page through JupyterLab's own commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
START_SECONDS = 90          # a cold JupyterLab start on a 2-core machine takes ~5-20 s
SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class Lab:
    url: str                # http://127.0.0.1:PORT
    token: str
    root: Path
    process: subprocess.Popen
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (run scripts/ensure-chromium.sh)"
    try:
        import playwright.sync_api
    except ImportError:
        return "playwright is not installed (pip install -e .[test])"
    return None


@contextlib.contextmanager
def running_lab(root: Path) -> Iterator[Lab]:
    """JupyterLab serving ``root``; stopped (kernels included) when the block ends."""
    state = Path(tempfile.mkdtemp(prefix="nbdebug-lab-"))
    for rel, value in SETTINGS.items():
        path = state / "settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime"), "PYTHONUNBUFFERED": "1"}
    log = state / "lab.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           f"--LabApp.workspaces_dir={state / 'workspaces'}", "--allow-root"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, proc, log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while f"127.0.0.1:{port}/lab" not in lab.log_text() or "is running at" not in \
                lab.log_text():
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{lab.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter lab did not start in {START_SECONDS} s:\n"
                                   f"{lab.log_text()[-3000:]}")
            time.sleep(0.25)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                      headless=True)


def open_notebook(page: Any, lab: Lab, name: str, timeout_ms: int = 90_000) -> None:
    """Open ``name`` alone (``reset``: not the notebooks an earlier test left open in the
    server's workspace, which would race it for the current tab) and wait until its kernel
    is ready."""
    page.goto(lab.notebook_url(name) + "&reset")
    page.wait_for_selector(".jp-Notebook", timeout=timeout_ms)
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return !!(w && w.sessionContext && w.sessionContext.session &&"
        " w.sessionContext.session.kernel &&"
        " w.sessionContext.session.kernel.connectionStatus === 'connected' &&"
        " w.sessionContext.session.kernel.status === 'idle'); }", timeout=timeout_ms)


def run_all(page: Any) -> None:
    """Run every cell of the current notebook (returns at once; cells run in the kernel)."""
    # the command's promise settles when the cells finish: do not wait for it
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells');"
                  " return true; }")


#: the browser tests' set-up cell: iris, sorted by class, in a loader that does not shuffle
IRIS = """
%load_ext nbdebug
import time
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_iris

torch.manual_seed(0)
data = load_iris()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)            # the iris file is sorted by class
train_loader = DataLoader(TensorDataset(X, y), batch_size=10)   # planted: no shuffle
"""
