"""The live dashboard under a ``%%diagnose`` cell, and its hand-over to the static report.

ipywidgets (header, plots as a PNG in an ``Image``, checklist) updated from the
capture's flush listeners: widget trait updates reach the browser while the cell is busy,
where an ipympl figure created in the same cell would not redraw. Redraws are throttled by
wall clock and by their own cost, so the dashboard never takes more than a small share of
the training's time. When the cell ends the widget is replaced, through its display
handle, by the static bundle of ``html.bundle`` (readable in saved notebooks and
nbconvert exports); ``keep_live`` leaves the widget showing the final state instead.

Plain data only: this module never imports torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..quiet import quiet
from ..report import Report
from . import html, plots
from .text import nothing_trained

FIRST_REDRAW_SECONDS = 5.0  # the first plot after this much of the cell: a shorter cell
                            # shows its final report only (a frame, its checklist included,
                            # costs a few hundredths of a second), the header counts steps
                            # meanwhile
MIN_REDRAW_SECONDS = 0.5   # at most two redraws a second: smooth enough, cheap enough
REDRAW_SHARE = 0.02        # a redraw waits until the view's redraws, it included, are at most
                           # 2% of the cell so far (the first one too, past its first 5 s)
MAX_REDRAW_SECONDS = 30.0  # ...but a view older than this is not live: redraw anyway (only
                           # reached when one redraw costs over 3 s: an overloaded machine)
CHECKS_SECONDS = 2.0       # the live checklist is re-evaluated at most this often
HEADER_SECONDS = 0.5       # the header's step count between redraws (a string: ~free)


class Dashboard:
    """One live view. ``update`` is a Session listener; ``finish`` its ``show``."""

    def __init__(self, live_report: Callable[[Any], Report] | None = None,
                 keep_live: bool = False, clock: Callable[[], float] = time.perf_counter):
        import ipywidgets as w

        started = self._started = clock()
        self._live_report = live_report
        self.keep_live = keep_live
        self._clock = clock
        self.header = w.HTML(html.render_header("running", 0, 0, 0.0, None))
        # hidden until its first PNG: an empty Image is a broken-image icon
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%",
                                                          display="none"))
        self.checklist = w.HTML("")
        # the checklist (problems first, the rest folded) above the plots: what matters is
        # in view without scrolling
        self.widget = w.VBox([self.header, self.checklist, self.image])
        self.widget.add_class("nbdebug-dashboard")
        self.handle: Any = None
        self.redraws = 0
        self.redraw_seconds = 0.0      # rendering + sending, summed
        self.last_redraw_cost = 0.0
        self._costs: list[float] = []
        self._next_redraw = started + FIRST_REDRAW_SECONDS
        self._next_checks = 0.0
        self._next_header = 0.0
        self._facts = ""
        self._findings: list[Any] = []
        self._checklist_html = ""
        #: seconds of this view outside the capture's clock (making and opening it, the
        #: final render)
        self.own_seconds = clock() - started

    # -- the live part -------------------------------------------------------
    def open(self) -> None:
        from IPython.display import display
        start = self._clock()
        self.handle = display(self.widget, display_id=True)
        with quiet():
            plots.warm_up()         # fonts and the Agg canvas: the first frame costs as any
        self.own_seconds += self._clock() - start

    def update(self, obs: Any) -> None:
        """Flush listener: redraw when the throttle allows, else return at once."""
        now = self._clock()
        if now < self._next_redraw:
            if now >= self._next_header:          # the step count: cheap, kept current
                self._next_header = now + HEADER_SECONDS
                with quiet():
                    self._header(obs, "running")
            return
        with quiet():
            self.redraw(obs, "running")
        # the next redraw is due when the view's time, that redraw's usual cost included
        # (the median of the last ones: one slowed by a pause does not stall the view for
        # seconds), is REDRAW_SHARE of the cell's
        self._costs = (self._costs + [self._clock() - now])[-5:]
        cost = sorted(self._costs)[len(self._costs) // 2]
        due = self._started + (self.redraw_seconds + cost) / REDRAW_SHARE
        self._next_redraw = min(now + MAX_REDRAW_SECONDS, max(now + MIN_REDRAW_SECONDS, due))

    def redraw(self, obs: Any, state: str) -> None:
        start = self._clock()
        if self._live_report is not None and start >= self._next_checks:
            self._next_checks = start + CHECKS_SECONDS
            report = self._live_report(obs)
            self._findings = list(report.findings)
            text = html.render_checklist(report, open_findings=False)
            if text != self._checklist_html:
                self._checklist_html = text
                self.checklist.value = html.STYLE + f'<div class="nbdebug-report">{text}</div>'
        timelines = plots.timelines_of(obs)
        self._show_png(plots.render_png(timelines, self._findings, only=plots.LIVE_PANELS,
                                        small=False))
        self._header(obs, state, plots.constant_facts(timelines))
        self.last_redraw_cost = self._clock() - start
        self.redraw_seconds += self.last_redraw_cost
        self.redraws += 1

    def _show_png(self, png: bytes) -> None:
        self.image.value = png
        if self.image.layout.display == "none":
            self.image.layout.display = None

    def _header(self, obs: Any, state: str, facts: str | None = None) -> None:
        if facts is not None:
            self._facts = facts
        epoch = max((ld.epochs for ld in obs.loaders if ld.role == "train"), default=0)
        self.header.value = html.render_header(state, obs.steps, epoch, obs.seconds,
                                               self.overhead(obs), self._facts)

    def overhead(self, obs: Any) -> float | None:
        """nbdebug's own time (hooks, flushes, this dashboard) against the rest of the run:
        how much slower the training runs than it would bare."""
        return obs.extra.get("overhead")

    # -- the end -------------------------------------------------------------
    def finish(self, report: Report) -> None:
        """Show the final report: the static bundle in place of the widget, or the widget."""
        with quiet():
            self._finish(report)

    def close(self) -> None:
        """Close the view and its parts: a closed widget's state (the last PNG) would
        otherwise stay in the kernel and in a saved notebook's widget state (front ends
        that record every state they were sent keep the last one: it is emptied first)."""
        self.image.value = b""
        self.checklist.value = ""
        _close_all([self.widget, self.header, self.image, self.checklist])

    def _final_header(self, run: dict[str, Any]) -> None:
        self.header.value = html.render_header(
            _state(run.get("status", "done")), run.get("steps", 0), run.get("epochs", 0),
            run.get("seconds", 0.0), run.get("overhead"), own=run.get("overhead_seconds"))

    def _finish(self, report: Report) -> None:
        run = report.run
        # the final state first: if a renderer below fails, the live view (kept, with the
        # text report printed under it) does not go on saying "running"
        self._final_header(run)
        if nothing_trained(report):     # one line in place of the live view, no plots
            if self.handle is None:
                self.open()
            self.handle.update(html.bundle(report, None), raw=True)
            self.close()
            return
        start = self._clock()
        png = plots.render_png(report.timelines, report.findings)
        self.own_seconds += self._clock() - start
        _count(run, self.own_seconds)
        if self.keep_live or self.handle is None:
            self._final_header(run)
            self._show_png(png)
            self.checklist.value = html.render_html(report, None)
            if self.handle is None:
                self.open()
            return
        self.handle.update(html.bundle(report, png), raw=True)
        self.close()


def _count(run: dict[str, Any], seconds: float) -> None:
    """Add ``seconds`` of nbdebug's own, spent outside the capture's clock, to the overhead
    the report shows (a share of the rest of the run's time)."""
    share, total = run.get("overhead"), run.get("seconds")
    if share is None or not total:
        return
    run["overhead"] = share + seconds * (1 + share) / total
    if isinstance(run.get("overhead_seconds"), (int, float)):
        run["overhead_seconds"] = round(run["overhead_seconds"] + seconds, 4)


def _close_all(widgets: list[Any]) -> None:
    for w in widgets:
        w.close()


def _state(status: str) -> str:
    return {"exited": "failed"}.get(status, status)
