"""The dashboard outside a notebook: terminal IPython prints text and opens no widget; the
Dashboard object itself (throttle, live checklist, final state) on a real training."""

from __future__ import annotations

import pytest
from conftest import diagnose_cell, run_cell

from nbdebug.magics import display as nb_display
from nbdebug.options import Settings
from nbdebug.session import Session
from nbdebug.ui import dashboard as dash_mod
from nbdebug.ui.dashboard import Dashboard

SETUP = """
import torch
from torch import nn
torch.manual_seed(0)
X = torch.randn(256, 8)
y = (X[:, 0] > 0).long()
net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
"""
TRAIN = """
for epoch in range(2):
    for i in range(0, 256, 16):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X[i:i + 16]), y[i:i + 16]).backward()
        opt.step()
"""


def test_terminal_ipython_prints_the_text_report_and_opens_no_widget(ip, capsys):
    nb_display.LAST_DASHBOARD.clear()
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN, flags="")
    assert result.success
    out = capsys.readouterr().out
    assert out.startswith("nbdebug: 32 steps") and "Vanilla SGD without momentum" in out
    # its own cost, as measured, in the first line
    assert f"nbdebug overhead {report.run['overhead']:.1%}" in out.splitlines()[0]
    assert not nb_display.in_notebook(ip) and nb_display.LAST_DASHBOARD == []


def test_report_and_explain_print_text_in_a_terminal(ip, capsys):
    run_cell(ip, SETUP)
    diagnose_cell(ip, TRAIN)
    capsys.readouterr()
    run_cell(ip, "%nbdebug report")
    assert capsys.readouterr().out.startswith("nbdebug: 32 steps")
    run_cell(ip, "%nbdebug explain 13")
    out = capsys.readouterr().out
    assert out.startswith("Point 13: No NaN / Inf") and "nan-origin" in out


def _trained_session(dash: Dashboard | None = None):
    import torch
    from torch import nn
    torch.manual_seed(0)
    X = torch.randn(256, 8)
    y = (X[:, 0] > 0).long()
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    session = Session(Settings(quiet=dash is None), {"net": net, "opt": opt},
                      show=dash.finish if dash else None)
    if dash is not None:
        session.listeners.append(dash.update)
    with session:
        for _ in range(4):              # 64 steps: past the step-count flush at 50, so the
            for i in range(0, 256, 16):  # live view is fed however fast the machine is
                opt.zero_grad()
                nn.functional.cross_entropy(net(X[i:i + 16]), y[i:i + 16]).backward()
                opt.step()
    return session


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_redraws_are_throttled_by_wall_clock():
    session = _trained_session()
    obs = session.capture.obs
    clock = Clock()
    dash = Dashboard(clock=clock)
    dash.update(obs)                    # the cell has just begun: its step count, no plot
    assert dash.redraws == 0 and dash.image.value == b""
    assert "step <span class=\"nbd-step\">64" in dash.header.value
    clock.now += dash_mod.FIRST_REDRAW_SECONDS
    for _ in range(9):                  # flushes every 1/8 s for one second
        dash.update(obs)
        clock.now += 0.125
    assert dash.redraws == 3            # at 0.0, 0.5 and 1.0 s: at most two a second
    assert dash.image.value[:4] == b"\x89PNG"


def test_an_expensive_redraw_waits_longer(monkeypatch):
    """The view's redraws stay within REDRAW_SHARE of the cell: each waits until the time
    they took, the next one's usual cost included, is that share of the cell so far."""
    session = _trained_session()
    obs = session.capture.obs
    clock = Clock()
    started = clock.now
    dash = Dashboard(clock=clock)
    clock.now += dash_mod.FIRST_REDRAW_SECONDS
    real = dash_mod.plots.render_png

    def slow_render(*args, **kwargs):   # the clock says each render costs 0.25 s
        clock.now += 0.25
        return real(*args, **kwargs)
    monkeypatch.setattr(dash_mod.plots, "render_png", slow_render)
    dash.update(obs)
    assert dash.redraws == 1
    due = started + 0.5 / dash_mod.REDRAW_SHARE     # two redraws: 0.5 s, 2% of 25 s
    clock.now = due - 0.5               # not yet: the redraws' own cost must stay small
    dash.update(obs)
    assert dash.redraws == 1
    clock.now = due
    dash.update(obs)
    assert dash.redraws == 2
    assert dash.redraw_seconds <= dash_mod.REDRAW_SHARE * (clock.now - started)


def test_a_real_session_feeds_the_live_view_and_keep_live_shows_the_end(capsys, monkeypatch):
    monkeypatch.setattr(dash_mod, "FIRST_REDRAW_SECONDS", 0.0)     # (a sub-second cell)
    dash = Dashboard(live_report=nb_display.live_checks(["sgd-momentum", "nan-origin"]),
                     keep_live=True)
    session = _trained_session(dash)
    assert dash.redraws >= 1 and dash.redraw_seconds > 0
    assert "nbd-checklist" in dash.checklist.value and "No NaN / Inf" in dash.checklist.value
    assert "done" in dash.header.value and "step <span class=\"nbd-step\">64" in \
        dash.header.value
    assert session.report.run["overhead"] > 0      # own time / the rest of the run


def test_the_final_render_counts_in_the_overhead_shown(monkeypatch):
    """The static report's figure is drawn after the capture's clock stopped: its seconds
    are added to the share shown (the cell is that much slower than the bare one)."""
    from nbdebug.report import Report
    clock = Clock()
    real = dash_mod.plots.render_png

    def render(*args, **kwargs):        # the clock says the final figure costs 5 s
        clock.now += 5.0
        return real(*args, **kwargs)
    monkeypatch.setattr(dash_mod.plots, "render_png", render)
    report = _trained_session().report
    share, total = report.run["overhead"], report.run["seconds"]
    dash = Dashboard(keep_live=True, clock=clock)
    dash.finish(report)
    rest = total / (1 + share)
    assert report.run["overhead"] == pytest.approx((share * rest + 5.0) / rest)
    assert f"{report.run['overhead']:.1%}"[:-1] in dash.header.value
    # the seconds are nbdebug's own, the figure's included; past 100% they are shown too
    assert report.run["overhead_seconds"] == pytest.approx(share * rest + 5.0, abs=1e-3)
    assert report.run["overhead"] > 1
    assert f"({report.run['overhead_seconds']:.1f} s)" in dash.header.value
    from nbdebug.ui.text import summary_line
    assert f"({report.run['overhead_seconds']:.1f} s)" in summary_line(report)


@pytest.mark.parametrize("status,state", [("done", "done"), ("exited", "failed"),
                                          ("interrupted", "interrupted")])
def test_header_names_how_the_cell_ended(status, state):
    from nbdebug.report import Report
    dash = Dashboard(keep_live=True)
    dash.finish(Report(run={"status": status, "steps": 5, "seconds": 1.0}))
    assert f">{state}</span>" in dash.header.value


def test_the_live_checklist_says_pending_until_a_check_can_judge():
    """A loader that never shuffles cannot be judged before its order repeats: point 6 is
    pending (never a premature "ok") during the first epoch and judged after it (a fixed
    order, advice here: the loss shows no harm); end-of-run checks stay pending while the
    run goes on, and the final report holds no pending item."""
    import time

    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    torch.manual_seed(0)
    X = torch.randn(160, 8)
    y = (X[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(X, y), batch_size=8)       # planted: no shuffle
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    session = Session(Settings(quiet=True), {"net": net, "opt": opt})
    build = nb_display.live_checks(session.check_ids)
    seen = []
    session.listeners.append(lambda obs: seen.append((
        obs.steps, max((ld.epochs for ld in obs.loaders if ld.role == "train"), default=0),
        build(obs))))
    with session:
        for _ in range(3):
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(net(xb), yb).backward()
                opt.step()
                time.sleep(0.03)       # an epoch lasts > 0.5 s: a live flush falls in it
    first_epoch = [r for steps, epochs, r in seen if epochs == 1 and steps > 0]
    assert first_epoch, [(s, e) for s, e, _ in seen]
    assert all(r.status(6) == "pending" for r in first_epoch)
    assert all(r.status(8) == "ok" for r in first_epoch)     # the optimizer, known at once
    assert all(r.status(11) == "pending" for _, _, r in seen)      # held-out: at the end
    later = [r for _, epochs, r in seen if epochs >= 3]
    final = session.report
    assert later and later[-1].status(6) == final.status(6) != "pending"
    assert final.finding("shuffle") is not None            # it did see the fixed order
    assert not any(i.status == "pending" for i in final.checklist)


def test_no_broken_image_before_the_first_plot_and_a_current_step_between_plots(
        monkeypatch):
    session = _trained_session()
    obs = session.capture.obs
    clock = Clock()
    dash = Dashboard(clock=clock)
    assert dash.image.layout.display == "none" and dash.image.value == b""
    clock.now += dash_mod.FIRST_REDRAW_SECONDS
    real = dash_mod.plots.render_png

    def slow_render(*args, **kwargs):     # each plot costs 1 s: the next waits 30 s (at most)
        clock.now += 1.0
        return real(*args, **kwargs)
    monkeypatch.setattr(dash_mod.plots, "render_png", slow_render)
    dash.update(obs)
    assert dash.image.layout.display is None and dash.image.value[:4] == b"\x89PNG"
    obs.steps = 999                      # training goes on; the plot is not due yet
    clock.now += 0.6
    dash.update(obs)
    assert dash.redraws == 1 and ">999</span>" in dash.header.value


def test_the_live_plot_is_one_row_and_cheap_next_to_the_full_figure():
    """The live frame draws its two panels on one row: a fraction of the whole figure's
    pixels, which is what quantizing and encoding cost. The time of a redraw is measured in
    benchmarks/dashboard_overhead.py, not here: a timed test fails on a busy machine."""
    import io

    from PIL import Image

    from nbdebug.ui import plots
    session = _trained_session()
    tl = plots.timelines_of(session.capture.obs)
    names = plots.panels(tl)
    assert set(plots.LIVE_PANELS) <= set(names) and len(names) >= 3, names
    live = Image.open(io.BytesIO(plots.render_png(tl, only=plots.LIVE_PANELS)))
    full = Image.open(io.BytesIO(plots.render_png(tl)))
    assert live.size[0] == full.size[0]
    assert live.size[1] < full.size[1] * 0.6, (live.size, full.size)
