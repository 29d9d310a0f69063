"""The check registry: small functions from Observations to Findings.

A check declares its id, the article point it serves (1..20 or a string key such as
"stuck"), its phase and the presets it belongs to. It returns a list of Findings (an
empty list means "checked, nothing wrong"), or ``NOT_APPLICABLE`` / ``NOT_CHECKED``.

A check builds its findings with ``finding(severity, title, message, fix, ...)`` and does
not restate its id and point: the registry stamps them on every finding it returns,
whether the check runs through ``run_checks`` or is called directly.
"""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from ..observations import Observations
from ..points import ARTICLE_KEYS
from ..points import title as point_title
from ..report import ChecklistItem, Finding
from .shared import computed_once

NOT_APPLICABLE = "not_applicable"
NOT_CHECKED = "not_checked"
PHASES = ("setup", "step", "timeline", "end")

Outcome = Union[list[Finding], str]
CheckFn = Callable[[Observations], Outcome]


@dataclass
class Check:
    id: str
    point: int | str
    phase: str
    fn: CheckFn
    presets: tuple[str, ...] = ("default",)
    title: str = ""
    doc: str = field(default="", repr=False)

    def run(self, obs: Observations) -> Outcome:
        return self.fn(obs)


REGISTRY: dict[str, Check] = {}
#: checklist keys beyond the article, in the order their checks were registered
EXTRA_KEYS: list[str] = []


#: placeholder id of a finding not yet stamped by the registry
UNSTAMPED = ""


def finding(severity: str, title: str, message: str, fix: str, where: str | None = None,
            evidence: dict[str, Any] | None = None, step: int | None = None) -> Finding:
    """A Finding of the running check: the registry fills in ``check`` and ``point``."""
    return Finding(check=UNSTAMPED, point=UNSTAMPED, severity=severity, title=title,
                   message=message, fix=fix, where=where, evidence=dict(evidence or {}),
                   step=step)


def _stamped(id: str, point: int | str, fn: CheckFn) -> CheckFn:
    @functools.wraps(fn)
    def run(obs: Observations) -> Outcome:
        out = fn(obs)
        if isinstance(out, str):
            return out
        out = list(out)
        for f in out:
            if f.check == UNSTAMPED:
                f.check, f.point = id, point
        return out
    return run


def check(id: str, point: int | str, phase: str, presets: tuple[str, ...] = ("default",),
          title: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under ``id``; its findings get ``id`` and ``point``."""
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}")

    def register(fn: CheckFn) -> CheckFn:
        stamped = _stamped(id, point, fn)
        REGISTRY[id] = Check(id, point, phase, stamped, tuple(presets),
                             title or point_title(point), (fn.__doc__ or "").strip())
        if point not in ARTICLE_KEYS and point not in EXTRA_KEYS:
            EXTRA_KEYS.append(str(point))
        return stamped

    return register


def presets() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"all": list(REGISTRY)}
    for c in REGISTRY.values():
        for p in c.presets:
            out.setdefault(p, []).append(c.id)
    out["setup"] = [c.id for c in REGISTRY.values() if c.phase == "setup"]
    out["dynamics"] = [c.id for c in REGISTRY.values() if c.phase != "setup"]
    out["none"] = []
    return out


def select(spec: str | None) -> list[str]:
    """Check ids for ``--checks``: presets, check ids and point numbers, comma-separated.

    A leading ``-`` removes an item: ``--checks all,-stuck``. Raises ValueError with the
    valid names when an item is unknown.
    """
    if not spec:
        spec = "default"
    table = presets()
    chosen: list[str] = []
    for raw in [s.strip() for s in spec.split(",") if s.strip()]:
        remove = raw.startswith("-")
        item = raw[1:] if remove else raw
        if item in table:
            ids = table[item]
        elif item in REGISTRY:
            ids = [item]
        elif item.isdigit() and 1 <= int(item) <= 20:
            ids = [c.id for c in REGISTRY.values() if c.point == int(item)]
        elif any(c.point == item for c in REGISTRY.values()):
            ids = [c.id for c in REGISTRY.values() if c.point == item]
        else:
            names = ", ".join(sorted(table)) + "; check ids: " + ", ".join(sorted(REGISTRY))
            raise ValueError(f"unknown check or preset {item!r} (presets: {names}; "
                             f"or a point number 1-20)")
        for i in ids:
            if remove and i in chosen:
                chosen.remove(i)
            elif not remove and i not in chosen:
                chosen.append(i)
    return chosen


@dataclass
class CheckRun:
    findings: list[Finding]
    outcomes: dict[str, str]          # check id -> "ok" | "not_applicable" | "not_checked" | sev
    errors: list[dict[str, str]]


_RANK = {"problem": 3, "warning": 2, "info": 1}


def run_checks(obs: Observations, ids: list[str]) -> CheckRun:
    """Run the chosen checks; a failing check becomes an internal error, never a crash.
    What several checks derive alike (``shared.once``) is computed once for all."""
    findings: list[Finding] = []
    outcomes: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    with computed_once():
        for cid in ids:
            c = REGISTRY[cid]
            try:
                out = c.run(obs)
            except Exception as exc:  # invariant 3: a bug in a check never breaks the cell
                errors.append({"where": f"check {cid}",
                               "error": f"{type(exc).__name__}: {exc}",
                               "traceback": traceback.format_exc()})
                outcomes[cid] = NOT_CHECKED
                continue
            if isinstance(out, str):
                outcomes[cid] = out
                continue
            out = list(out)
            findings.extend(out)
            worst = max((_RANK[f.severity] for f in out), default=0)
            outcomes[cid] = {3: "problem", 2: "warning"}.get(worst, "ok")
    findings.sort(key=lambda f: -_RANK[f.severity])
    return CheckRun(findings, outcomes, errors)


def checklist(run: CheckRun) -> list[ChecklistItem]:
    """All twenty points, then "stuck", then extra keys; each with its worst status."""
    items: list[ChecklistItem] = []
    for key in [*ARTICLE_KEYS, *EXTRA_KEYS]:
        ids = [cid for cid in run.outcomes if REGISTRY[cid].point == key]
        states = [run.outcomes[cid] for cid in ids]
        if "problem" in states:
            status = "problem"
        elif "warning" in states:
            status = "warning"
        elif "ok" in states:
            status = "ok"
        elif NOT_APPLICABLE in states:
            status = NOT_APPLICABLE
        else:
            status = NOT_CHECKED
        ttl = point_title(key) if key in ARTICLE_KEYS else next(
            (REGISTRY[c].title for c in REGISTRY if REGISTRY[c].point == key), str(key))
        items.append(ChecklistItem(point=key, title=ttl, status=status, checks=ids))
    return items
