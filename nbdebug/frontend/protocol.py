"""The sidebar protocol: comm targets, message types, limits and the builders of messages.

Two comms per notebook kernel. The data comm (kernel -> sidebar) is opened by the kernel
and carries ``hello``, ``start``, ``snapshot``, ``finding`` and ``done``. The control comm
(sidebar -> kernel) is opened by the sidebar over a kernel subshell and carries ``hello``
(request the state) and ``stop``. ``PROTOCOL_VERSION`` is defined once here and once in
``labextension/src/protocol.ts``; both sides compare it at hello.

Plain data only: messages hold summaries (numbers and short strings), never tensors.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: bump on any change of the message shapes; must equal PROTOCOL_VERSION in protocol.ts
PROTOCOL_VERSION = 1
DATA_TARGET = "nbdebug.data"
CONTROL_TARGET = "nbdebug.control"

DATA_TYPES = ("hello", "start", "snapshot", "finding", "done")
CONTROL_TYPES = ("hello", "stop")

#: a control message is a few short fields; anything bigger is not from the sidebar
MAX_CONTROL_BYTES = 1024
#: nesting of a control message (the sidebar's are flat objects); deeper is rejected
MAX_CONTROL_DEPTH = 4
#: snapshots at most twice a second: live enough for a chart, cheap for the socket
SNAPSHOT_SECONDS = 0.5
#: points per live chart; the whole run is decimated to this many
CHART_POINTS = 120
#: a finding's evidence is cut to this many JSON characters: findings stay small
EVIDENCE_CHARS = 2000
#: text fields (message, fix, exception) are cut to this many characters
TEXT_CHARS = 2000


def hello(nbdebug_version: str, for_control: str | None, subshell: bool | None) -> dict:
    return {"type": "hello", "version": PROTOCOL_VERSION, "nbdebug": nbdebug_version,
            "for": for_control, "subshell": subshell}


def start(run: int, cell_id: str | None, execution_count: int | None) -> dict:
    return {"type": "start", "run": run, "cell": cell_id, "execution_count": execution_count}


def snapshot(run: int, steps: int, elapsed: float, loss: dict, grad_norm: dict,
             nan: dict | None, checklist: list[dict] | None = None) -> dict:
    """``checklist``: the live statuses (``pending`` until a check can judge), when known;
    a sidebar that does not read the field ignores it."""
    msg = {"type": "snapshot", "run": run, "steps": steps, "elapsed": round(elapsed, 2),
           "loss": loss, "grad_norm": grad_norm, "nan": nan}
    if checklist is not None:
        msg["checklist"] = checklist
    return msg


def checklist_items(report: Any) -> list[dict]:
    return [{"point": c.point, "title": _text(c.title), "status": c.status}
            for c in report.checklist]


def finding(run: int, index: int, f: Any) -> dict:
    return {"type": "finding", "run": run, "index": index, "check": f.check,
            "point": f.point, "severity": f.severity, "title": _text(f.title),
            "message": _text(f.message), "fix": _text(f.fix),
            "where": None if f.where is None else _text(f.where), "step": f.step,
            "evidence": _evidence(f.evidence)}


def done(run: int, report: Any, elapsed: float) -> dict:
    run_info = report.run or {}
    problems = sum(1 for f in report.findings if f.severity == "problem")
    warnings = sum(1 for f in report.findings if f.severity == "warning")
    exc = run_info.get("exception")
    return {"type": "done", "run": run, "status": run_info.get("status", "done"),
            "steps": run_info.get("steps", 0), "elapsed": round(elapsed, 2),
            "findings": len(report.findings), "problems": problems, "warnings": warnings,
            "checklist": checklist_items(report),
            "exception": None if exc is None else _text(str(exc)),
            "errors": len(report.errors)}


def chart(steps: list[int], values: list[Any], points: int = CHART_POINTS) -> dict:
    """At most ``points`` (step, value) pairs over the whole run; non-finite become None."""
    n = len(steps)
    if n > points:
        idx = [round(i * (n - 1) / (points - 1)) for i in range(points)]
        steps = [steps[i] for i in idx]
        values = [values[i] for i in idx]
    return {"steps": [int(s) for s in steps], "values": [_number(v) for v in values]}


def total_norm(row: Any) -> float | None:
    """The global gradient norm of a per-parameter row (NaN columns are absent params)."""
    try:
        vals = [float(v) for v in row]
    except (TypeError, ValueError):
        return None
    present = [v for v in vals if not math.isnan(v)]
    if not present:
        return None
    if any(math.isinf(v) for v in present):
        return None
    return math.sqrt(sum(v * v for v in present))


def parse_control(data: Any) -> tuple[dict | None, str | None]:
    """(message, None) for a valid control message, or (None, why it is ignored).

    The message is data only: it is measured, type-checked and compared, never evaluated,
    imported or unpickled. Its size and depth are bounded before anything walks it whole,
    so a huge or deeply nested payload costs a bounded amount of work and cannot raise.
    """
    why = _too_big(data)
    if why is not None:
        return None, why
    try:
        size = len(json.dumps(data))
    except (TypeError, ValueError, RecursionError):
        return None, "not JSON"
    if size > MAX_CONTROL_BYTES:
        return None, f"oversized ({size} bytes > {MAX_CONTROL_BYTES})"
    if not isinstance(data, dict):
        return None, f"not an object ({type(data).__name__})"
    kind = data.get("type")
    if kind not in CONTROL_TYPES:
        return None, f"unknown type {str(kind)[:40]!r}"
    if kind == "hello":
        if not isinstance(data.get("version"), int) or isinstance(data.get("version"), bool):
            return None, "hello without an integer version"
        dc = data.get("data_comm")
        if dc is not None and not isinstance(dc, str):
            return None, "hello with a non-string data_comm"
        cid = data.get("control_comm")
        if cid is not None and not isinstance(cid, str):
            return None, "hello with a non-string control_comm"
    if kind == "stop":
        run = data.get("run")
        if run is not None and (not isinstance(run, int) or isinstance(run, bool)):
            return None, "stop with a non-integer run"
    return data, None


def _too_big(data: Any) -> str | None:
    """Why ``data`` is no control message by its shape alone: too deep, too big, or not
    JSON types; None when it is small plain data. Iterative, and stops at the first bound:
    its cost never depends on how large the payload is."""
    budget = MAX_CONTROL_BYTES
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_CONTROL_DEPTH:
            return f"nested deeper than {MAX_CONTROL_DEPTH} levels"
        if isinstance(value, str):
            budget -= len(value) + 2
        elif value is None or isinstance(value, (bool, int, float)):
            budget -= 5
        elif isinstance(value, (list, tuple)):
            budget -= 2 + len(value)
            if budget >= 0:
                stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, dict):
            budget -= 2 + 2 * len(value)
            if budget >= 0:
                for k, v in value.items():
                    if not isinstance(k, str):
                        return "not JSON"
                    budget -= len(k) + 2
                    stack.append((v, depth + 1))
        else:
            return "not JSON"
        if budget < 0:
            return f"oversized (more than {MAX_CONTROL_BYTES} bytes)"
    return None


def _number(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return round(x, 6) if math.isfinite(x) else None


def _text(s: Any) -> str:
    s = str(s)
    return s if len(s) <= TEXT_CHARS else s[:TEXT_CHARS - 1] + "…"


def _evidence(ev: Any) -> Any:
    from ..report import _clean
    clean = _clean(ev or {})
    text = json.dumps(clean, allow_nan=False)
    if len(text) <= EVIDENCE_CHARS:
        return clean
    return {"summary": text[:EVIDENCE_CHARS - 1] + "…"}
