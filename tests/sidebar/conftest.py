"""A real JupyterLab (free port, random token, throwaway settings) and headless Chromium."""

from __future__ import annotations

import json
import os
import pathlib
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
#: JupyterLab starts in a few seconds here; a slow CI machine gets this long
SERVER_START_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _need(what: str, ok: bool, how: str) -> None:
    if not ok:
        pytest.fail(f"{what} is missing: {how}", pytrace=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a temporary folder; yields (base_url, token, root folder)."""
    _need("the nbdebug-sidebar build", (pathlib.Path(__file__).parents[2] / "nbdebug" /
          "labextension" / "package.json").exists(), "run `make install` (npm build)")
    _need("chromium", os.path.exists(CHROMIUM), "run scripts/ensure-chromium.sh")
    base = tmp_path_factory.mktemp("lab")
    root, settings, work = base / "root", base / "settings", base / "workspaces"
    for d in (root, settings, work):
        d.mkdir()
    news = settings / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps(
        {"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_RUNTIME_DIR": str(base / "runtime"), "PYTHONUNBUFFERED": "1",
           # tiny models: one thread each, so that busy kernels do not fight over 2 cores
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={work}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.disable_check_xsrf=True"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if re.search(rf"is running at:|http://127\.0\.0\.1:{port}/lab", line):
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(SERVER_START_SECONDS):
        proc.kill()
        pytest.fail("JupyterLab did not start:\n" + "".join(lines[-40:]), pytrace=False)
    yield f"http://127.0.0.1:{port}", token, root
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if os.environ.get("NBDEBUG_SHOW_LAB_LOG"):
        print("".join(lines))
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(lab, browser):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def wait_for(predicate, timeout: float = 30.0, every: float = 0.05):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")
