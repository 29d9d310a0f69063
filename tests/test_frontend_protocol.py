"""The sidebar protocol, kernel side, through a recording comm and real %%diagnose cells."""

from __future__ import annotations

import json
import logging
import pathlib
import threading
import time

import pytest

from nbdebug.frontend import protocol as P
from nbdebug.frontend.bridge import Bridge
from nbdebug.session import WATCHERS

from conftest import diagnose_cell, run_cell
from test_corpus import parse_case

# the corpus's NaN story (a log of a ReLU output), set-up and diagnosed loop
_NAN_CASE = parse_case(pathlib.Path(__file__).parent / "cases" / "nan_log_in_forward.py")
NAN_TRAINING, NAN_LOOP = _NAN_CASE["setup"], _NAN_CASE["body"]
SMALL_MODEL = """
    import time
    import torch
    from torch import nn
    torch.manual_seed(0)
    X = torch.randn(64, 8)
    y = (X[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
"""
TIMED_LOOP = """
    t_end = time.perf_counter() + {seconds}
    while time.perf_counter() < t_end:
        loss = nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        time.sleep(0.002)
"""
COUNTED_LOOP = """
    for step in range({steps}):
        loss = nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        time.sleep(0.004)
"""


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: torch's spinning thread pool only slows them on a busy 2-core box."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class RecordingComm:
    """Stands in for an ipykernel Comm: records what is sent, with the time."""
    count = 0

    def __init__(self, data=None):
        RecordingComm.count += 1
        self.comm_id = f"comm-{RecordingComm.count}"
        self.open_data = data
        self.sent: list[tuple[float, dict]] = []
        self.closed = False
        self._on_msg = None
        self._on_close = None

    def send(self, data):
        json.dumps(data, allow_nan=False)          # what a real comm would have to do
        self.sent.append((time.perf_counter(), data))

    def on_msg(self, cb):
        self._on_msg = cb

    def on_close(self, cb):
        self._on_close = cb

    def close(self):
        self.closed = True

    def deliver(self, data):
        """The sidebar sends ``data`` on this (control) comm."""
        self._on_msg({"content": {"data": data}})

    @property
    def types(self):
        return [m["type"] for _, m in self.sent]


@pytest.fixture(params=[True])
def bridge(request):
    comms: list[RecordingComm] = []

    def open_comm(data):
        c = RecordingComm(data)
        comms.append(c)
        return c

    b = Bridge(open_comm, "test", cell_of_request=lambda: ("cell-abc", 7))
    b.comms = comms
    b.announce()
    if request.param:       # the sidebar answers the announcement: hello, naming its comm
        control = RecordingComm()
        b.control_opened(control, {"content": {"data": {
            "type": "hello", "version": P.PROTOCOL_VERSION, "data_comm": comms[0].comm_id,
            "control_comm": control.comm_id, "subshell": True}}})
        assert control.sent == [] and comms[0].sent == [] and len(comms) == 1
    WATCHERS.append(b)
    yield b
    WATCHERS.remove(b)


def test_hello_then_start_snapshot_findings_done(ip, bridge):
    run_cell(ip, NAN_TRAINING)
    result, report = diagnose_cell(ip, NAN_LOOP)
    assert result.success
    data = bridge.comms[0]
    assert data.open_data["type"] == "hello"
    assert data.open_data["version"] == P.PROTOCOL_VERSION
    types = data.types
    assert types[0] == "start" and types[-1] == "done"
    assert "snapshot" in types
    first_finding = types.index("finding")
    assert all(t == "snapshot" for t in types[1:first_finding])
    assert all(t == "finding" for t in types[first_finding:-1])
    msgs = [m for _, m in data.sent]
    assert msgs[0]["cell"] == "cell-abc" and msgs[0]["execution_count"] == 7
    assert {m["run"] for m in msgs} == {1}
    done = msgs[-1]
    assert done["findings"] == len(report.findings) == types.count("finding")
    point13 = next(c for c in done["checklist"] if c["point"] == 13)
    assert point13["status"] == "problem"
    nan_finding = next(m for m in msgs if m["type"] == "finding" and m["point"] == 13)
    assert nan_finding["severity"] == "problem" and nan_finding["fix"]
    last_snapshot = [m for m in msgs if m["type"] == "snapshot"][-1]
    assert last_snapshot["steps"] == report.run["steps"] == 8
    assert last_snapshot["nan"] is not None
    assert len(last_snapshot["loss"]["steps"]) == 8


def test_snapshots_are_throttled_and_small(ip, bridge):
    run_cell(ip, SMALL_MODEL)
    diagnose_cell(ip, COUNTED_LOOP.format(steps=400))
    data = bridge.comms[0]
    seconds = data.sent[-1][0] - data.sent[0][0]
    times = [t for t, m in data.sent if m["type"] == "snapshot"]
    # one per SNAPSHOT_SECONDS while running, plus the final one at the end
    assert seconds > 3 * P.SNAPSHOT_SECONDS
    assert 3 <= len(times) <= seconds / P.SNAPSHOT_SECONDS + 2
    gaps = [b - a for a, b in zip(times[:-2], times[1:-1])]
    assert gaps and min(gaps) >= P.SNAPSHOT_SECONDS * 0.95
    for _, m in data.sent:
        assert len(json.dumps(m)) < 8000
    snap = [m for _, m in data.sent if m["type"] == "snapshot"][-1]
    assert snap["steps"] > P.CHART_POINTS
    assert len(snap["loss"]["values"]) == P.CHART_POINTS
    # gradient norms come from the hooked steps (steady steps take none): fewer, and the
    # chart holds the ones there are, from the whole run
    grads = snap["grad_norm"]
    assert 0 < len(grads["values"]) <= P.CHART_POINTS and grads["steps"][-1] > 300
    assert all(v is not None and v > 0 for v in grads["values"])


@pytest.mark.parametrize("bridge", [False], indirect=True)
def test_no_live_snapshots_until_a_sidebar_says_hello(ip, bridge):
    """A front end without the sidebar (nbclient, VS Code, the classic notebook) never
    answers the announcement: the run's live snapshots and checklists are not made for
    it. Its start, final snapshot, findings and end are kept, and a sidebar that says
    hello later gets them, then live snapshots of the next run."""
    run_cell(ip, SMALL_MODEL)
    diagnose_cell(ip, COUNTED_LOOP.format(steps=400))
    data = bridge.comms[0]
    assert data.types[0] == "start" and data.types[-1] == "done"
    assert data.types.count("snapshot") == 1            # the end's, for the state kept
    control = RecordingComm()
    sent = len(data.sent)
    bridge.control_opened(control, {"content": {"data": {
        "type": "hello", "version": P.PROTOCOL_VERSION, "data_comm": data.comm_id,
        "control_comm": control.comm_id, "subshell": True}}})
    assert data.types[sent:] == data.types[:sent]       # the run replayed, as it was sent
    before = len(data.sent)
    diagnose_cell(ip, COUNTED_LOOP.format(steps=400))
    assert data.types[before:].count("snapshot") >= 3


def test_hello_replays_the_latest_run_on_a_new_data_comm(ip, bridge):
    run_cell(ip, NAN_TRAINING)
    diagnose_cell(ip, NAN_LOOP)
    control = RecordingComm()
    bridge.control_opened(control, {"content": {"data": {
        "type": "hello", "version": P.PROTOCOL_VERSION, "data_comm": None,
        "control_comm": control.comm_id, "subshell": True}}})
    assert len(bridge.comms) == 2
    fresh = bridge.comms[1]
    assert fresh.open_data["for"] == control.comm_id
    live = [t for t in bridge.comms[0].types if t != "snapshot"]
    assert [t for t in fresh.types if t != "snapshot"] == live
    assert fresh.types[0] == "start" and fresh.types[-1] == "done"
    assert fresh.types.count("snapshot") == 1
    # a page that names its data comm gets the replay there, and no new comm
    control.deliver({"type": "hello", "version": P.PROTOCOL_VERSION,
                     "data_comm": fresh.comm_id})
    assert len(bridge.comms) == 2
    assert fresh.types.count("done") == 2
    assert control.sent == []


def test_version_mismatch_is_ignored_and_logged(bridge, caplog):
    control = RecordingComm()
    with caplog.at_level(logging.WARNING, logger="nbdebug.frontend"):
        bridge.control_opened(control, {"content": {"data": {
            "type": "hello", "version": P.PROTOCOL_VERSION + 1}}})
    assert len(bridge.comms) == 1
    assert "protocol" in bridge.ignored[-1]
    assert "protocol" in caplog.text


@pytest.mark.parametrize("data, why", [
    ({"type": "reboot"}, "unknown type"),
    ({"type": "stop", "run": "1"}, "non-integer run"),
    ({"type": "hello", "version": "1"}, "integer version"),
    ({"type": "hello", "version": True}, "integer version"),
    (["stop"], "not an object"),
    ({"type": "stop", "pad": "x" * (P.MAX_CONTROL_BYTES + 1)}, "oversized"),
])
def test_invalid_control_messages_are_ignored_and_logged(bridge, caplog, data, why):
    control = RecordingComm()
    bridge.control_opened(control, {"content": {"data": None}})
    with caplog.at_level(logging.WARNING, logger="nbdebug.frontend"):
        control.deliver(data)
    assert why in bridge.ignored[-1]
    assert why in caplog.text
    assert len(bridge.comms) == 1 and control.sent == []


def test_stop_from_another_thread_ends_training_at_a_step_boundary(ip, bridge):
    run_cell(ip, SMALL_MODEL)
    control = RecordingComm()
    bridge.control_opened(control, {"content": {"data": None}})
    asked = {}

    def press_stop():
        while bridge.active is None or bridge.active.capture.step < 5:
            time.sleep(0.01)
        control.deliver({"type": "stop", "run": bridge.run + 1})   # a stale run: no effect
        time.sleep(0.2)
        asked["step"] = bridge.active.capture.step
        control.deliver({"type": "stop", "run": bridge.run})

    thread = threading.Thread(target=press_stop)
    thread.start()
    result, report = diagnose_cell(ip, TIMED_LOOP.format(seconds=60))
    thread.join()
    assert report.run["status"] == "stopped"
    # the step running when Stop came is the last one (the stale stop did nothing)
    assert report.run["steps"] - asked["step"] <= 1
    assert report.run["seconds"] < 30
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    done = bridge.comms[0].sent[-1][1]
    assert done["type"] == "done" and done["status"] == "stopped"


def test_a_broken_comm_is_dropped_and_the_cell_runs_on(ip, bridge):
    def fail(data):
        raise OSError("socket gone")
    bridge.comms[0].send = fail
    run_cell(ip, NAN_TRAINING)
    result, report = diagnose_cell(ip, NAN_LOOP)
    assert result.success and report.status(13) == "problem"
    assert bridge.data_comms == []
    assert report.errors == []


def test_a_closed_data_comm_is_forgotten(bridge):
    bridge.comms[0]._on_close({"content": {}})
    assert bridge.data_comms == []


def test_plain_ipython_has_no_sidebar(ip):
    from nbdebug import frontend
    assert frontend.attach(ip) is None
    assert not any(isinstance(w, Bridge) for w in WATCHERS)


def test_both_sides_define_the_same_protocol():
    import pathlib
    import re
    ts = (pathlib.Path(__file__).parents[1] / "labextension" / "src" / "protocol.ts").read_text()
    assert int(re.search(r"PROTOCOL_VERSION = (\d+);", ts).group(1)) == P.PROTOCOL_VERSION
    assert f"DATA_TARGET = '{P.DATA_TARGET}'" in ts
    assert f"CONTROL_TARGET = '{P.CONTROL_TARGET}'" in ts
    for kind in P.DATA_TYPES:
        assert f"case '{kind}':" in ts


def test_a_cell_that_trains_nothing_leaves_the_last_run_in_the_sidebar(ip, bridge):
    run_cell(ip, SMALL_MODEL)
    diagnose_cell(ip, COUNTED_LOOP.format(steps=5))
    comm = bridge.comms[0]
    sent_before, run_before = len(comm.sent), bridge.run
    result, report = diagnose_cell(ip, "x = 1 + 1\n")
    assert result.success and report.nothing_trained()
    assert len(comm.sent) == sent_before and bridge.run == run_before
    # a page that reloads now gets the real run again
    late = RecordingComm()
    bridge.control_opened(late, {"content": {"data": {"type": "hello",
                                                      "version": P.PROTOCOL_VERSION}}})
    replay = bridge.comms[-1].sent
    assert [m["type"] for _, m in replay][-1] == "done"
    assert all(m["run"] == run_before for _, m in replay if "run" in m)


def test_snapshots_carry_the_live_checklist_pending_until_judged(ip, bridge):
    run_cell(ip, SMALL_MODEL)
    diagnose_cell(ip, TIMED_LOOP.format(seconds=3))
    sent = [m for _, m in bridge.comms[0].sent]
    snapshots = [m for m in sent if m["type"] == "snapshot"]
    live = [m for m in snapshots if "checklist" in m]
    # sent when it changes (pending items become verdicts), not in every snapshot
    assert 1 <= len(live) < len(snapshots) - 1
    assert all(a["checklist"] != b["checklist"] for a, b in zip(live, live[1:]))
    first = {i["point"]: i["status"] for i in live[0]["checklist"]}
    assert first[11] == "pending" and first[19] == "pending"   # held-out: judged at the end
    assert len(first) == len(sent[-1]["checklist"])            # every item, live too
    done = sent[-1]
    assert done["type"] == "done"
    assert not any(i["status"] == "pending" for i in done["checklist"])
    assert {i["point"]: i["status"] for i in done["checklist"]}[11] == "not_checked"
