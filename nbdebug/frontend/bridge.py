"""The kernel side of the sidebar: one Bridge per kernel, fed by the Session's hooks.

``started`` / ``ended`` come from ``session.WATCHERS``; snapshots from a Session listener
(called at each flush, on the main thread), throttled to ``SNAPSHOT_SECONDS``. Control
messages arrive on the subshell's thread: ``stop`` only sets the capture's flag, ``hello``
replays the state of the latest run on this page's data comm.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..quiet import quiet
from . import protocol as P

log = logging.getLogger("nbdebug.frontend")

#: one data comm per open page; reloads leave stale ones, the oldest is closed past this
MAX_DATA_COMMS = 8
#: the sidebar's live checklist is re-evaluated at most this often
CHECKLIST_SECONDS = 2.0


class Bridge:
    def __init__(self, open_comm: Callable[[dict], Any], nbdebug_version: str,
                 cell_of_request: Callable[[], tuple[str | None, int | None]] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._open_comm = open_comm
        self._version = nbdebug_version
        self._cell_of_request = cell_of_request or (lambda: (None, None))
        self._clock = clock
        self._lock = threading.RLock()
        self.data_comms: list[Any] = []
        #: the data comms a sidebar has said hello for (its control comm named them, or
        #: they were opened for it): live snapshots are made only while one is open (a
        #: front end without the sidebar, nbclient or VS Code, never says hello)
        self.heard: list[Any] = []
        #: why control messages were ignored (also logged); tests read it
        self.ignored: list[str] = []
        self.run = 0
        self.active: Any = None
        self._t0 = 0.0
        self._last_snapshot_at = -1e9
        self._state: list[dict] = []          # start, last snapshot, findings, done
        self._snapshot: dict | None = None
        self._pending_start: dict | None = None   # the start of a run not yet shown
        self._checklist: list[dict] | None = None
        self._checklist_sent: list[dict] | None = None
        self._checklist_at = -1e9

    # -- data comms --------------------------------------------------------------
    def announce(self, for_control: str | None = None, subshell: bool | None = None) -> Any:
        """Open a data comm whose open message is the hello; returns the comm or None."""
        try:
            comm = self._open_comm(P.hello(self._version, for_control, subshell))
        except Exception:
            log.warning("nbdebug: could not open the sidebar comm", exc_info=True)
            return None
        try:
            comm.on_close(lambda msg, c=comm: self._forget(c))
        except Exception:
            pass
        with self._lock:
            self.data_comms.append(comm)
            while len(self.data_comms) > MAX_DATA_COMMS:
                old = self.data_comms.pop(0)
                if old in self.heard:
                    self.heard.remove(old)
                _quiet(old.close)
        return comm

    def _forget(self, comm: Any) -> None:
        with self._lock:
            if comm in self.data_comms:
                self.data_comms.remove(comm)
            if comm in self.heard:
                self.heard.remove(comm)

    def _send(self, msg: dict, to: Any = None) -> None:
        with self._lock:
            comms = [to] if to is not None else list(self.data_comms)
            for comm in comms:
                try:
                    comm.send(msg)
                except Exception:
                    log.warning("nbdebug: sidebar comm failed; dropped", exc_info=True)
                    self._forget(comm)

    # -- session hooks (main thread) ---------------------------------------------
    def started(self, session: Any) -> None:
        """A diagnosis begins. Its ``start`` goes out at its first training flush, so a
        cell that trains nothing leaves the sidebar showing the last real run."""
        cell, count = self._cell_of_request()
        with self._lock:
            self.run += 1
            self.active = session
            self._t0 = self._clock()
            self._last_snapshot_at = -1e9
            self._pending_start = P.start(self.run, cell, count)
            self._checklist, self._checklist_at = None, -1e9
            self._checklist_sent = None
        session.listeners.append(self.on_flush)

    def _send_start(self) -> None:
        with self._lock:
            start, self._pending_start = self._pending_start, None
            if start is None:
                return
            self._snapshot = None
            self._state = [start]
        self._send(start)

    def on_flush(self, obs: Any) -> None:
        with quiet():
            self._on_flush(obs)

    def _on_flush(self, obs: Any) -> None:
        if self._pending_start is not None:
            if not (obs.steps or obs.trained):
                return
            self._send_start()
        now = self._clock()
        if not self.heard or now - self._last_snapshot_at < P.SNAPSHOT_SECONDS:
            return              # (no sidebar listens: the end's state is kept for a hello)
        self._last_snapshot_at = now
        self._publish_snapshot(obs, now - self._t0)

    def _publish_snapshot(self, obs: Any, elapsed: float, live: bool = True) -> None:
        """Send a snapshot; its live checklist only when it changed (the sidebar keeps the
        last one), so the traffic does not grow with the run's length. The state kept for
        a page that reloads holds the checklist whole."""
        checklist = self._live_checklist(obs, elapsed) if live else None
        msg = snapshot_of(self.run, obs, elapsed, checklist)
        kept = msg
        if checklist is not None and checklist == self._checklist_sent:
            msg = {k: v for k, v in msg.items() if k != "checklist"}
        self._checklist_sent = checklist if checklist is not None else self._checklist_sent
        with self._lock:
            self._snapshot = kept
            self._state = [s for s in self._state if s["type"] != "snapshot"] + [kept]
        self._send(msg)

    def _live_checklist(self, obs: Any, elapsed: float) -> list[dict] | None:
        """The live checklist, re-evaluated at most every CHECKLIST_SECONDS (the checks
        cost more than a snapshot); None when nbdebug cannot build it (logged)."""
        session = self.active
        if session is None:
            return None
        if elapsed - self._checklist_at >= CHECKLIST_SECONDS or self._checklist is None:
            self._checklist_at = elapsed
            try:
                from ..ui.live import live_report
                self._checklist = P.checklist_items(live_report(obs, session.check_ids))
            except Exception:
                log.warning("nbdebug: the sidebar's live checklist failed", exc_info=True)
                self._checklist = None
        return self._checklist

    def ended(self, session: Any) -> None:
        elapsed = self._clock() - self._t0
        report = session.report
        with self._lock:
            self.active = None
            unsent = self._pending_start is not None
        if unsent and (report is None or report.nothing_trained()):
            with self._lock:              # the sidebar keeps showing the last real run
                self._pending_start = None
                self.run -= 1
            return
        self._send_start()
        if session.capture is not None:
            self._publish_snapshot(session.capture.obs, elapsed, live=False)
        if report is None:
            return
        msgs = [P.finding(self.run, i, f) for i, f in enumerate(report.findings)]
        msgs.append(P.done(self.run, report, elapsed))
        with self._lock:
            self._state.extend(msgs)
        for msg in msgs:
            self._send(msg)

    # -- control comm (the subshell's thread) ------------------------------------
    def control_opened(self, comm: Any, open_msg: dict) -> None:
        comm.on_msg(lambda msg, c=comm: self.on_control(c, _data(msg)))
        data = _data(open_msg)
        if data:
            self.on_control(comm, data)

    def on_control(self, comm: Any, data: Any) -> None:
        """A message from the sidebar: data to validate, never code; whatever it holds, it
        is acted on (stop, hello) or ignored and logged, and nothing raises from here."""
        try:
            self._on_control(comm, data)
        except Exception:
            self.ignored.append("internal error while handling it")
            log.warning("nbdebug: a sidebar control message failed; ignored", exc_info=True)

    def _on_control(self, comm: Any, data: Any) -> None:
        msg, why = P.parse_control(data)
        if msg is None:
            self.ignored.append(why or "invalid")
            log.warning("nbdebug: ignored a sidebar control message: %s", why)
            return
        if msg["type"] == "stop":
            session = self.active
            run = msg.get("run")
            if session is not None and session.capture is not None and (
                    run is None or run == self.run):
                session.capture.request_stop()
            return
        if msg["version"] != P.PROTOCOL_VERSION:
            why = (f"sidebar protocol {msg['version']} but this kernel's nbdebug speaks "
                   f"{P.PROTOCOL_VERSION}")
            self.ignored.append(why)
            log.warning("nbdebug: %s; update the extension or nbdebug", why)
            return
        self.resync(msg.get("data_comm"), msg.get("control_comm"),
                    threading.current_thread() is not threading.main_thread())

    def resync(self, data_comm_id: str | None, control_id: str | None,
               subshell: bool | None) -> None:
        """Replay the latest run on the page's data comm, opening one if it has none."""
        with self._lock:
            target = next((c for c in self.data_comms
                           if data_comm_id is not None and _comm_id(c) == data_comm_id), None)
        if target is None:
            target = self.announce(for_control=control_id, subshell=subshell)
            if target is None:
                return
        with self._lock:
            if target not in self.heard and target in self.data_comms:
                self.heard.append(target)
            state = list(self._state)
        for msg in state:
            self._send(msg, to=target)

    def close(self) -> None:
        with self._lock:
            comms, self.data_comms = self.data_comms, []
            self.heard = []
        for comm in comms:
            _quiet(comm.close)


def snapshot_of(run: int, obs: Any, elapsed: float,
                checklist: list[dict] | None = None) -> dict:
    """A small summary of the Observations so far: counts and two decimated charts."""
    loss = obs.timelines.get("loss")
    grads = obs.timelines.get("grad_norm")
    loss_chart = P.chart(list(loss.steps), list(loss.values)) if loss else P.chart([], [])
    if grads:
        grad_chart = P.chart(list(grads.steps), [P.total_norm(r) for r in grads.values])
    else:
        grad_chart = P.chart([], [])
    nan = None
    if obs.nan is not None:
        nan = {"step": obs.nan.step, "phase": obs.nan.phase,
               "where": None if obs.nan.where is None else str(obs.nan.where)[:200],
               "kind": obs.nan.kind}
    return P.snapshot(run, obs.steps, elapsed, loss_chart, grad_chart, nan, checklist)


def _data(msg: Any) -> Any:
    try:
        return msg["content"]["data"]
    except (KeyError, TypeError):
        return None


def _comm_id(comm: Any) -> str | None:
    return getattr(comm, "comm_id", None)


def _quiet(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        pass
