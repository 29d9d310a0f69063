"""Extra key "freeze": parameters meant to stay frozen do (silent errors a loss hides)."""

from __future__ import annotations

from .. import keys
from ..observations import Observations
from ..report import Finding
from .registry import NOT_APPLICABLE, NOT_CHECKED, check, finding


def _listed(names: list[str], limit: int = 4) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


@check("freeze-intent", point="freeze", phase="end", title="Frozen parameters stay frozen")
def freeze_intent(obs: Observations) -> list[Finding] | str:
    """Parameters with requires_grad=False that an optimizer still changed, and parameters
    frozen only after the first steps had updated them."""
    if not obs.trained:
        return NOT_CHECKED
    seen = obs.extra.get(keys.FREEZE)
    if seen is None:
        return NOT_APPLICABLE                 # nothing was frozen at the start or the end
    out = []
    changed = seen.get("frozen_changed", [])
    late = seen.get("frozen_late", [])
    unfrozen = seen.get("unfrozen", [])
    if changed:
        out.append(finding(
            severity="problem",
            title="Frozen parameters changed",
            message=(f"{len(changed)} parameter(s) with requires_grad=False changed during "
                     f"training ({_listed(changed)}): the optimizer still steps them, usually "
                     "with a gradient left in .grad from before they were frozen."),
            fix=("Freeze before the first backward, and clear what is left: "
                 "p.requires_grad_(False); p.grad = None; or build the optimizer from "
                 "[p for p in model.parameters() if p.requires_grad]."),
            where=changed[0], evidence={"frozen_changed": changed[:20]}))
    if late:
        out.append(finding(
            severity="warning",
            title="Parameters frozen after training started",
            message=(f"{len(late)} parameter(s) were trainable at the first step and frozen "
                     f"by the end ({_listed(late)}), after steps had already changed them: a "
                     "freeze applied inside the training loop (in train(), or after the "
                     "first epoch) lets the first steps update what was meant to stay."),
            fix=("Set requires_grad_(False) on those parameters before the first step (and "
                 "before building the optimizer)."),
            where=late[0], evidence={"frozen_late": late[:20]}))
    if unfrozen:
        out.append(finding(
            severity="info",
            title="Parameters unfrozen during training",
            message=(f"{len(unfrozen)} parameter(s) frozen at the first step were trainable "
                     f"by the end ({_listed(unfrozen)}): gradual unfreezing, if meant so."),
            fix="Nothing to do if this unfreezing is intended.",
            where=unfrozen[0], evidence={"unfrozen": unfrozen[:20]}))
    return out
