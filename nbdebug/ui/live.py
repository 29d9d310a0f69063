"""The live checklist: what the checks can already judge while the cell runs.

A check run on a partial run can say "ok" only because it has not seen enough: a loader
that does not shuffle looks fine before its second epoch, a held-out check has nothing
before the first held-out pass, the loss-trend checks need a window of steps. While the
cell runs, such an item is ``pending`` (a status of the live view only: the final report
never holds it) until its check can judge:

- items no check has judged yet (``not_checked``) are pending: the run may still give the
  chance;
- end-of-run checks judge at the end: pending while the run goes on (a problem they find
  early still shows);
- loss-trend checks (phase ``timeline``) judge after ``TIMELINE_STEPS`` steps: before, a
  noisy first loss is no trend, and neither an ok nor an alarm would be true;
- point 6 (shuffling) judges an order after the first epoch of a training loader; a
  loader sorted by label shows at once.
"""

from __future__ import annotations

from typing import Any

from ..report import ChecklistItem, Report

PENDING = "pending"
TIMELINE_STEPS = 30
_FLAGGED = ("problem", "warning")


def _phases(item: ChecklistItem, registry: dict[str, Any]) -> set[str]:
    return {registry[c].phase for c in item.checks if c in registry}


def _first_epoch_done(obs: Any) -> bool:
    # a loader's epochs count the passes begun: a second pass means the first one ended
    return any(getattr(ld, "epochs", 0) >= 2 for ld in getattr(obs, "loaders", [])
               if getattr(ld, "role", "") == "train")


def pending_item(item: ChecklistItem, obs: Any, registry: dict[str, Any]) -> bool:
    """True when ``item``'s status on the run so far is not yet a verdict."""
    steps = int(getattr(obs, "steps", 0) or 0)
    if item.status == "not_checked" or steps == 0:
        return item.status != "not_applicable" or steps == 0
    phases = _phases(item, registry)
    if "timeline" in phases and steps < TIMELINE_STEPS:
        return True                         # alarms included: no trend in a few steps
    if item.status in _FLAGGED:
        return False
    if phases and phases <= {"end"}:
        return True
    return item.point == 6 and item.status == "ok" and not _first_epoch_done(obs)


def live_statuses(report: Report, obs: Any, registry: dict[str, Any]) -> Report:
    """``report`` (checks on the run so far) with the items that cannot judge yet marked
    pending, and the alarms of pending items left out of the live view (advice stays)."""
    held = set()
    for item in report.checklist:
        if pending_item(item, obs, registry):
            item.status, item.reason = PENDING, _why(item, obs, registry)
            held.add(item.point)
    report.findings = [f for f in report.findings
                       if f.point not in held or f.severity not in _FLAGGED]
    return report


def live_report(obs: Any, check_ids: list[str]) -> Report:
    """The checks on the run so far, with the items that cannot judge yet pending."""
    from ..checks import REGISTRY, checklist, run_checks
    from ..quiet import quiet
    with quiet():
        run = run_checks(obs, check_ids)
    report = Report(findings=run.findings, checklist=checklist(run))
    return live_statuses(report, obs, REGISTRY)


def _why(item: ChecklistItem, obs: Any, registry: dict[str, Any]) -> str:
    phases = _phases(item, registry)
    if not int(getattr(obs, "steps", 0) or 0):
        return "waiting for the first training step"
    if "timeline" in phases:
        return f"judged after {TIMELINE_STEPS} steps"
    if phases and phases <= {"end"}:
        return "judged when the cell ends"
    if item.point == 6:
        return "judged after the first epoch"
    return "not seen yet"
