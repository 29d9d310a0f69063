"""The live dashboard in a real JupyterLab and Chromium: plots appear and change while the
cell runs, and the static report with the planted problem replaces them at the end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from notebook_util import notebook

from .lab import IRIS, open_notebook, run_all

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"    # the README's pictures
TRAIN_SECONDS = 40        # long enough for two redraws even where one costs ~1 s (5 s, 36 s)
WATCH_SECONDS = 150       # the cell's whole run, kernel start and final render included

SETUP = IRIS + """
val_loader = DataLoader(TensorDataset(X[::3], y[::3]), batch_size=50)
model = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                      nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)         # planted: no momentum
"""

TRAIN = f"""
%%diagnose
start = time.perf_counter()
while time.perf_counter() - start < {TRAIN_SECONDS}:     # epochs for a fixed wall time
    model.train()
    for xb, yb in train_loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        time.sleep(0.02)                  # slow enough to watch
    model.eval()
    with torch.no_grad():
        for xb, yb in val_loader:
            model(xb)
"""


def test_dashboard_updates_live_and_leaves_the_report(lab, page):
    import nbformat
    nbformat.write(notebook(SETUP, TRAIN), lab.root / "dashboard.ipynb")
    open_notebook(page, lab, "dashboard.ipynb")
    run_all(page)

    dash = ".nbdebug-dashboard"
    page.wait_for_selector(f"{dash} img[src]", timeout=90_000)
    images, steps = set(), set()
    shot, shot_of = False, set()
    deadline = time.monotonic() + WATCH_SECONDS
    while time.monotonic() < deadline:
        live = page.query_selector(dash)
        if live is None:
            break                                  # replaced by the static report
        try:   # the cell may end (and the widget be replaced) between two reads
            state_el = live.query_selector(".nbd-state")
            state = state_el.inner_text() if state_el else ""
            if state == "running":
                src = live.query_selector("img").get_attribute("src")
                step = live.query_selector(".nbd-step").inner_text()
        except Exception:
            if page.query_selector(dash) is None:
                break
            raise
        if state == "running":
            images.add(src)
            steps.add(int(step))
            if len(images) >= 2 and src not in shot_of:
                # the README's picture: the latest live frame, up to the fourth
                DOCS.mkdir(exist_ok=True)
                if len(shot_of) < 3:
                    live.screenshot(path=str(DOCS / "dashboard.png"), timeout=60_000)
                shot_of.add(src)
                shot = True
        time.sleep(0.2)
    assert len(images) >= 2, f"the plots did not change while the cell ran ({images})"
    assert len(steps) >= 2 and max(steps) > 0
    assert shot, "the dashboard never showed two different plots while running"

    report = page.wait_for_selector(".jp-OutputArea .nbdebug-report .nbd-checklist",
                                    timeout=60_000)
    assert page.query_selector(dash) is None
    problem = page.query_selector('details.nbd-problem[data-point="6"]')
    assert problem is not None, report.inner_text()
    assert problem.get_attribute("open") is not None
    assert "shuffle" in problem.inner_text().lower()
    # plain SGD that does no harm here is advice: point 8 stays ok, the advice in its row
    assert page.query_selector('details.nbd-warning[data-point="8"]') is None
    assert "Vanilla SGD without momentum" in (report.text_content() or "")
    assert page.query_selector(".jp-OutputArea .nbdebug-report img") is not None
    # (the README's picture of the report comes from test_report_browser)
