"""End to end: the nbdebug sidebar in a real JupyterLab, driven by headless Chromium.

One server and one browser page for the module; each test opens its own notebook (its own
kernel). Notebook cells are run the way a user runs them (Run All), the panel is read
through its DOM.
"""

from __future__ import annotations

import pathlib
import re
import time

import nbformat
import pytest

from .conftest import wait_for

pytestmark = pytest.mark.slow

BUILD = pathlib.Path(__file__).parents[2] / "build"
DOCS = pathlib.Path(__file__).parents[2] / "docs"      # the README's pictures

# label-sorted iris without shuffling (point 6), slowed a little so the run is seen live
SORTED_SETUP = """\
import time
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_iris
data = load_iris()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)
loader = DataLoader(TensorDataset(X, y), batch_size=10)
clf = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
sgd = torch.optim.SGD(clf.parameters(), lr=0.05)"""
SORTED_TRAIN = """\
%%diagnose
for epoch in range(16):
    for features, labels in loader:
        sgd.zero_grad()
        nn.functional.cross_entropy(clf(features), labels).backward()
        sgd.step()
        time.sleep(0.012)"""
LONG_TRAIN = """\
%%diagnose
t_end = time.perf_counter() + 120
while time.perf_counter() < t_end:
    for features, labels in loader:
        sgd.zero_grad()
        nn.functional.cross_entropy(clf(features), labels).backward()
        sgd.step()
        time.sleep(0.005)"""
# a training that fails with a message made of HTML: it must show as text
FAILING_TRAIN = """\
%%diagnose
for step, (features, labels) in enumerate(loader):
    sgd.zero_grad()
    nn.functional.cross_entropy(clf(features), labels).backward()
    sgd.step()
    if step == 5:
        raise ValueError('<img src=x onerror="window.__nbdebug_pwned=1"><b>bold</b>')"""


def _notebook(root: pathlib.Path, name: str, *cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, root / name)
    return name


def _open(page, lab, name: str) -> None:
    base, token, _ = lab
    if "/lab" not in page.url:
        page.goto(f"{base}/lab/tree/{name}?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
    else:
        _open_path(page, name)
    page.wait_for_function(
        "name => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && w.context.path === name &&"
        " w.sessionContext.session?.kernel?.status === 'idle'; }", arg=name)
    tab = page.locator('.lm-TabBar-tab[data-id="nbdebug-sidebar"]')
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    page.wait_for_selector("#nbdebug-sidebar .nbd-notebook", state="visible")


def _open_path(page, name: str) -> None:
    page.evaluate("name => { void window.jupyterapp.commands.execute('docmanager:open', "
                  "{path: name}); }", name)


def _shut_down(page, *names: str) -> None:
    """Close notebooks and their kernels: the machine has two cores."""
    for name in names:
        page.evaluate("""async name => {
            const app = window.jupyterapp;
            const w = [...app.shell.widgets('main')].find(w => w.context?.path === name);
            if (w) { await w.sessionContext.shutdown(); w.dispose(); }
        }""", name)


def _run_all(page) -> None:
    # not awaited: the command's promise settles only when every cell has run
    page.evaluate("() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def _panel(page):
    return page.locator("#nbdebug-sidebar")


def _state(page) -> str | None:
    node = page.locator("#nbdebug-sidebar .nbd-state")
    return node.get_attribute("data-state") if node.count() else None


def _steps(page) -> int:
    node = page.locator("#nbdebug-sidebar .nbd-steps")
    return int(node.inner_text().split()[0]) if node.count() else 0


def test_buggy_training_live_then_the_right_point_as_a_problem(page, lab):
    root = lab[2]
    name = _notebook(root, "sorted.ipynb", "%load_ext nbdebug", SORTED_SETUP, SORTED_TRAIN)
    _open(page, lab, name)
    assert "not loaded" in _panel(page).locator(".nbd-connection").inner_text()
    _run_all(page)
    # live: running, steps growing, a loss line drawn before the cell ends
    wait_for(lambda: _state(page) == "running" and _steps(page) > 0)
    first = _steps(page)
    page.wait_for_selector('#nbdebug-sidebar .nbd-chart[data-series="loss"] polyline')
    page.wait_for_selector('#nbdebug-sidebar .nbd-chart[data-series="gradient norm"] '
                           'polyline')
    assert _state(page) == "running"
    wait_for(lambda: _steps(page) > first, timeout=10)
    # the checklist, live: what cannot be judged yet (the held-out points, judged at the
    # end) is pending while the run goes on
    live = _panel(page).locator('.nbd-checklist[data-live="true"]')
    live.wait_for(timeout=10_000)
    statuses = live.evaluate("b => Object.fromEntries([...b.querySelectorAll('.nbd-item')]"
                             ".map(li => [li.dataset.point, li.dataset.status]))")
    assert statuses["11"] == "pending" and len(statuses) >= 21, statuses
    wait_for(lambda: _state(page) == "done", timeout=60)
    panel = _panel(page)
    assert _steps(page) == 16 * 15
    assert panel.locator(".nbd-item").count() >= 21
    assert panel.locator('.nbd-item[data-status="pending"]').count() == 0
    assert panel.locator('.nbd-item[data-point="6"]').get_attribute("data-status") == "problem"
    assert panel.locator('.nbd-item[data-point="13"]').get_attribute("data-status") == "ok"
    card = panel.locator('.nbd-finding[data-point="6"]').first
    assert "shuffle" in card.inner_text().lower()
    assert "Fix:" in card.locator(".nbd-finding-fix").inner_text()
    _screenshot(page)
    # clicking a finding selects the cell that ran %%diagnose
    page.evaluate("window.jupyterapp.shell.currentWidget.content.activeCellIndex = 0")
    card.click()
    wait_for(lambda: page.evaluate(
        "window.jupyterapp.shell.currentWidget.content.activeCellIndex") == 2, timeout=5)


def _screenshot(page) -> None:
    """The whole panel, top to bottom, for the README."""
    size = page.viewport_size
    height = page.evaluate("document.getElementById('nbdebug-sidebar').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height + 80)})
    page.evaluate("document.getElementById('nbdebug-sidebar').scrollTop = 0")
    DOCS.mkdir(exist_ok=True)
    _panel(page).screenshot(path=str(DOCS / "sidebar.png"))
    page.set_viewport_size(size)


def test_kernel_text_is_rendered_as_text_and_a_second_notebook_switches(page, lab):
    root = lab[2]
    name = _notebook(root, "failing.ipynb", "%load_ext nbdebug", SORTED_SETUP,
                     FAILING_TRAIN)
    _open(page, lab, name)
    panel = _panel(page)
    assert panel.locator(".nbd-notebook").inner_text() == "failing.ipynb"
    assert panel.locator(".nbd-run").count() == 0
    _run_all(page)
    wait_for(lambda: _state(page) == "failed", timeout=60)
    shown = panel.locator(".nbd-exception").inner_text()
    assert '<img src=x onerror="window.__nbdebug_pwned=1"><b>bold</b>' in shown
    assert panel.locator("img, b").count() == 0
    assert page.evaluate("window.__nbdebug_pwned") is None
    # back to the first notebook: its own run comes back
    _open_path(page, "sorted.ipynb")
    wait_for(lambda: panel.locator(".nbd-notebook").inner_text() == "sorted.ipynb")
    wait_for(lambda: _state(page) == "done")
    assert panel.locator('.nbd-item[data-point="6"]').get_attribute("data-status") == "problem"
    _shut_down(page, "failing.ipynb", "sorted.ipynb")


def test_protocol_mismatch_is_shown(page, lab):
    root = lab[2]
    fake = ("from comm import create_comm\n"
            "c = create_comm(target_name='nbdebug.data', data={'type': 'hello', "
            "'version': 999, 'nbdebug': '9.9', 'for': None, 'subshell': None})")
    name = _notebook(root, "mismatch.ipynb", fake)
    _open(page, lab, name)
    _run_all(page)
    conn = _panel(page).locator('.nbd-connection[data-status="mismatch"]')
    conn.wait_for()
    assert "version 999" in conn.inner_text()
    _shut_down(page, "mismatch.ipynb")


def test_without_subshells_the_stop_button_says_so(page, lab):
    root = lab[2]
    short = LONG_TRAIN.replace("+ 120", "+ 4")
    name = _notebook(root, "nosubshell.ipynb", "%load_ext nbdebug", SORTED_SETUP, short)
    _open(page, lab, name)
    # a front end whose comms do not use subshells (as with a kernel that has none)
    page.evaluate("() => { window.jupyterapp.shell.currentWidget.sessionContext.session"
                  ".kernel.commsOverSubshells = 'disabled'; }")
    _run_all(page)
    wait_for(lambda: _state(page) == "running", timeout=60)
    stop = _panel(page).locator(".nbd-stop")
    assert "needs kernel subshells" in stop.inner_text()
    assert stop.is_disabled()
    wait_for(lambda: _state(page) == "done", timeout=60)
    _shut_down(page, name)


def test_stop_within_two_seconds_then_reload_resyncs_and_restart_clears(page, lab):
    root = lab[2]
    name = _notebook(root, "long.ipynb", "%load_ext nbdebug", SORTED_SETUP, LONG_TRAIN,
                     "print('after the stop')")
    _open(page, lab, name)
    _run_all(page)
    wait_for(lambda: _state(page) == "running" and _steps(page) > 20, timeout=60)
    stop = _panel(page).locator(".nbd-stop")
    assert stop.is_enabled(), stop.inner_text()
    t0 = time.perf_counter()
    stop.click()
    wait_for(lambda: _state(page) == "stopped", timeout=10)
    took = time.perf_counter() - t0
    BUILD.mkdir(exist_ok=True)
    (BUILD / "sidebar-stop-seconds.txt").write_text(f"{took:.3f}\n")
    assert took < 2.0, f"stopped after {took:.2f} s"
    # the cell ended (as an interrupted cell) and printed the report; the kernel is free
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const out = w.content.widgets[2].node.querySelector('.jp-OutputArea');"
        " return w.sessionContext.session.kernel.status === 'idle' && out &&"
        " out.innerText.includes('Training stopped at step'); }", timeout=20_000)
    # one line, no traceback through nbdebug's or torch's frames
    out = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets[2]"
                        ".node.querySelector('.jp-OutputArea-output[data-mime-type="
                        "\"application/vnd.jupyter.stderr\"]').innerText")
    assert re.fullmatch(r"Training stopped at step \d+; report above\s*", out), out
    assert "stopped by user" in _panel(page).locator(".nbd-state").inner_text()

    # a browser reload: the new page asks the kernel and shows the same run again
    base, token, _ = lab
    page.goto(f"{base}/lab/tree/long.ipynb?token={token}")
    _open(page, lab, "long.ipynb")
    wait_for(lambda: _state(page) == "stopped", timeout=30)
    page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.restartKernel()")
    conn = _panel(page).locator('.nbd-connection[data-status="not-loaded"]')
    conn.wait_for()
    assert _panel(page).locator(".nbd-run").count() == 0



BUSY_TRAIN = LONG_TRAIN.replace("+ 120", "+ 8")


def test_the_kernel_reads_busy_for_the_whole_first_diagnosed_cell(page, lab):
    """The first %%diagnose of a kernel shows a widget; the widget manager then opens its
    first comm over a subshell, and the status message of that create_subshell_request
    used to set the kernel's status to idle while the cell still ran."""
    root = lab[2]
    name = _notebook(root, "busy.ipynb", "%load_ext nbdebug", SORTED_SETUP, BUSY_TRAIN)
    _open(page, lab, name)
    page.evaluate("""() => {
      window.__busy = [];
      const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
      k.statusChanged.connect((_, s) => window.__busy.push(['status', s]));
      k.iopubMessage.connect((_, m) => {
        if (m.header.msg_type === 'execute_input' && m.content.code.includes('%%diagnose'))
          window.__busy.push(['start', m.parent_header.msg_id]);
        if (m.header.msg_type === 'status' && m.content.execution_state === 'idle')
          window.__busy.push(['idle', m.parent_header.msg_id]);
      });
    }""")
    _run_all(page)
    wait_for(lambda: _state(page) == "running", timeout=60)
    wait_for(lambda: _state(page) == "done", timeout=60)
    page.wait_for_function("""() => { const ev = window.__busy;
        const s = ev.find(e => e[0] === 'start');
        return s && ev.some(e => e[0] === 'idle' && e[1] === s[1]); }""", timeout=30_000)
    events = page.evaluate("() => window.__busy")
    start = next(i for i, e in enumerate(events) if e[0] == "start")
    msg_id = events[start][1]
    end = next(i for i, e in enumerate(events) if e == ["idle", msg_id])
    # (a status change is signalled before the iopub message that caused it: the idle
    # just before the cell's own idle message is the cell's end)
    if events[end - 1] == ["status", "idle"]:
        end -= 1
    during = [e[1] for e in events[start:end] if e[0] == "status"]
    assert "idle" not in during, events[start:end + 1]
    _shut_down(page, name)
