"""Init audits (point 17): a targeted init that a later, broader init routine redrew."""

from __future__ import annotations

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, check, finding


@check("init-overwritten", point=17, phase="setup")
def init_overwritten(obs: Observations) -> list[Finding] | str:
    """Tensors whose init from the user's code was redrawn before training by a later
    routine that covers more tensors (``model.apply(init_weights)`` after a scaled or zero
    init of a few layers): the targeted init is lost whatever the run shows (warning).
    A broad init followed by a targeted one (GPT-2's scaled residual projections) is the
    usual design and is not reported; neither are the inits torch's constructors make."""
    groups = obs.extra.get(keys.INIT_OVERWRITTEN)
    if groups is None:
        return NOT_APPLICABLE
    out = []
    for g in groups:
        lost, final, names = g["lost"], g["final"], g["tensors"]
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        if lost["std"] and final["std"]:
            scale = (f": they start at std {final['std']:.3g}, {final['std'] / lost['std']:.2g}x "
                     f"the intended {lost['std']:.3g}")
        else:
            scale = f": they start as {_dist(final)} instead of {_dist(lost)}"
        out.append(finding(
            "warning", "An init overwritten by a later one",
            message=(f"{len(names)} tensor(s) ({shown}) were set by {lost['fn']} at "
                     f"{lost['where']} ({_dist(lost)}, a line that initialises "
                     f"{g['lost_breadth']} tensor(s)), then drawn again by {final['fn']} at "
                     f"{final['where']} ({_dist(final)}, applied to {g['final_breadth']}), "
                     f"before training started. The targeted init is lost{scale}."),
            fix=(f"Run the general init first and the targeted one after it (move the line at "
                 f"{lost['where']} after the call that reaches {final['where']}), or skip "
                 "those tensors in the general routine."),
            where=names[0], evidence=dict(g)))
    return out


def _dist(r: dict) -> str:
    if r["const"] is not None:
        return f"all {r['const']:g}"
    return f"std {r['std']:.3g}" if r["std"] else "a structured init"
