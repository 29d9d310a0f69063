"""The experiments an expert runs before a long training, each on copies.

Every function takes a ``Context`` and returns plain data (numbers, and curves under
"curves" as ``{key: (columns, rows)}``); ``Skip`` says why it could not run. None of them
touches the user's model, optimizer or RNG: they work on ``copy_model`` twins and fresh
optimizers, inside the runner's ``rng_kept``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..capture.structure import first_tensor
from .context import (BINARY_LOSSES, CLASSIFICATION_LOSSES, Batch, Context, Skip, TooFew,
                      copy_model, forward_loss, fresh_optimizer, safe_optimizer, train_steps)

#: overfit one batch: at most this many samples, steps, and the safe optimizer's lr
OVERFIT_SAMPLES = 32
OVERFIT_STEPS = 200
SAFE_LR = 3e-3
#: "near zero": the loss at or below this share of its value at init
FIT_SHARE = 0.1
#: label control: steps per run, permutations, and the fewest samples it can judge with
#: three classes or more (twice as many with two): fewer hold too little signal, a healthy
#: LSTM or CNN learns nothing that carries over from 32 samples to 32 others, just as with
#: wrong labels. Samples of the first steps are gathered when the first batch is smaller.
LABEL_STEPS = 60
LABEL_PERMUTATIONS = 3
LABEL_MIN_BATCH = 128
#: lr sweep: steps, span below and above the user's lr, and "diverged" (x the best loss)
SWEEP_STEPS = 60
SWEEP_SPAN = 1e4
DIVERGED = 4.0
#: the zeroed-input run stops once its best has not improved by PLATEAU_GAIN in this many steps
PLATEAU_STEPS = 20
PLATEAU_GAIN = 0.01
#: the label control scores the held half every this many steps
HELD_EVERY = 3
#: steps of the confirmation runs at the user's lr (and at the suggested one)
CONFIRM_STEPS = 30


def check_output(ctx: Context) -> None:
    """The loss of the first step was computed on the model's output: else skip all."""
    twin = copy_model(ctx.model)
    out = twin(*ctx.batch.args, **ctx.batch.kwargs)     # with grad: its last op is compared
    if not ctx.output_matches(out):
        raise Skip(f"the {ctx.loss.name} input was not the model's output as it is (custom "
                   "loss arithmetic, a reshaped or indexed output): pre-flight cannot "
                   "recompute the loss")


# -- 1. the loss at init --------------------------------------------------------------
def expected_loss(ctx: Context) -> tuple[float, str] | None:
    """What a model that knows nothing scores: ln C, ln 2, or the targets' mean square."""
    y = ctx.batch.target
    if ctx.loss.name in CLASSIFICATION_LOSSES and ctx.classes:
        return math.log(ctx.classes), f"ln {ctx.classes} (chance over {ctx.classes} classes)"
    if ctx.loss.name in BINARY_LOSSES:
        return math.log(2), "ln 2 (a coin flip per label)"
    if ctx.loss.name == "mse_loss" and y.is_floating_point():
        return float((y.float() ** 2).mean()), "the targets' mean square (predicting 0)"
    return None


def init_loss(ctx: Context) -> dict[str, Any]:
    """The first batch's loss at init against its expected value, and per-layer scale."""
    twin = copy_model(ctx.model)
    layers: list[dict[str, Any]] = []
    names = {id(m): n for n, m in twin.named_modules()}

    def record(mod: nn.Module, args: Any, out: Any) -> None:
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.numel() < 2:
            return
        row: dict[str, Any] = {"name": _qualify(ctx.model_name, names.get(id(mod), "?")),
               "type": type(mod).__name__, "out_std": float(out.float().std())}
        if x is not None and x.is_floating_point() and x.numel() > 1:
            row["in_std"] = float(x.float().std())
            row["gain"] = row["out_std"] / max(row["in_std"], 1e-12)
        layers.append(row)
    leaves = [m for m in twin.modules() if next(iter(m.children()), None) is None
              and next(iter(m.parameters(recurse=False)), None) is not None]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            out = twin(*ctx.batch.args, **ctx.batch.kwargs)
            value = float(ctx.loss(out, ctx.batch.target))
    finally:
        for h in handles:
            h.remove()
    t = first_tensor(out)
    per_sample = t.float().reshape(t.shape[0], -1) if t is not None and t.dim() else None
    res: dict[str, Any] = {"loss": value, "seen_loss": ctx.seen_loss, "loss_fn": ctx.loss.name,
                           "layers": layers[:50]}
    if per_sample is not None:
        res["output_absmax"] = float(per_sample.abs().max())
        res["output_std"] = float(per_sample.std()) if per_sample.numel() > 1 else 0.0
        res["constant_output"] = bool(per_sample.shape[0] > 1 and torch.equal(
            per_sample.amax(0), per_sample.amin(0)))
    exp = expected_loss(ctx)
    if exp is not None:
        res["expected"], res["expected_is"] = exp
        res["ratio"] = value / exp[0] if exp[0] > 0 else None
        if ctx.loss.name == "mse_loss":
            res["target_std"] = float(ctx.batch.target.float().std())
    return res


# -- 2. overfit one batch -------------------------------------------------------------
def _small(ctx: Context) -> Batch:
    n = min(ctx.batch.size, OVERFIT_SAMPLES)
    return ctx.batch.rows(torch.arange(n)) if n < ctx.batch.size else ctx.batch


def overfit(ctx: Context) -> dict[str, Any]:
    """Can a copy with Adam at a safe lr drive one small batch's loss near zero?"""
    batch = _small(ctx)
    twin = copy_model(ctx.model)
    twin.eval()            # no dropout noise: memorising is the question, not regularising
    opt = safe_optimizer(list(twin.parameters()), SAFE_LR)
    # the first step by hand: its gradients say where learning is blocked
    first = forward_loss(twin, batch, ctx.loss)
    first.backward()
    grads = _grad_table(ctx.model_name, twin)
    opt.step()
    opt.zero_grad(set_to_none=True)
    start = float(first.detach())
    goal = FIT_SHARE * start
    losses, _ = train_steps(twin, opt, batch, ctx.loss, OVERFIT_STEPS - 1, ctx,
                            stop=lambda ls: ls[-1] <= goal)
    losses = [start, *losses]
    best = min((v for v in losses if math.isfinite(v)), default=start)
    ctx.cache["overfit"] = losses
    nonfinite = not all(math.isfinite(v) for v in losses)
    return {"samples": batch.size, "steps": len(losses), "max_steps": OVERFIT_STEPS,
            "optimizer": f"Adam(lr={SAFE_LR:g})", "init": start, "best": best,
            "final": losses[-1], "fits": best <= goal, "nonfinite": nonfinite,
            "budget_out": len(losses) < OVERFIT_STEPS and best > goal, "grads": grads,
            "curves": {"overfit": (["loss"], [[v] for v in losses])}}


def _grad_table(root: str, model: nn.Module) -> dict[str, Any]:
    """Per weight: gradient norm over weight norm at the first step, and the params with no
    gradient at all (the graph does not reach them)."""
    ratios: dict[str, float] = {}
    missing: list[str] = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        full = _qualify(root, name)
        if p.grad is None:
            missing.append(full)
        elif p.dim() > 1:
            ratios[full] = float(p.grad.norm()) / max(float(p.detach().norm()), 1e-12)
    return {"ratio": ratios, "no_grad": missing}


# -- 4. does the output depend on the inputs? -------------------------------------------
def inputs_used(ctx: Context) -> dict[str, Any]:
    """Train a copy on the same batch with its inputs zeroed: the same best loss as the real
    inputs means the model ignores them."""
    real = ctx.cache.get("overfit")
    if not real:
        raise Skip("needs the overfit-one-batch curve")
    batch = _small(ctx).zeroed()
    twin = copy_model(ctx.model)
    twin.eval()                          # as the overfit run it is compared with
    opt = safe_optimizer(list(twin.parameters()), SAFE_LR)
    finite = [v for v in real if math.isfinite(v)]
    real_best = min(finite, default=real[0])

    def settled(ls: list[float]) -> bool:
        """As good as the real inputs, or no better for PLATEAU_STEPS steps."""
        if ls[-1] <= real_best:
            return True
        if len(ls) <= PLATEAU_STEPS:
            return False
        return min(ls[-PLATEAU_STEPS:]) > (1 - PLATEAU_GAIN) * min(ls[:-PLATEAU_STEPS])
    losses, _ = train_steps(twin, opt, batch, ctx.loss, len(real), ctx, stop=settled)
    if ctx.left() <= 0:
        raise Skip("the time budget ran out during the zeroed-input run")
    zero_best = min((v for v in losses if math.isfinite(v)), default=losses[0])
    return {"steps": len(losses), "init": real[0], "real_best": real_best,
            "zero_best": zero_best,
            "curves": {"inputs": (["real inputs", "zeroed inputs"], [
                [r, losses[i] if i < len(losses) else math.nan] for i, r in enumerate(real)])}}


# -- 3. the learning-rate range test -----------------------------------------------------
def _halves(batch: Batch) -> tuple[Batch, Batch]:
    """Even and odd samples: a copy trains on one and is scored on the other, as the real
    training meets new samples at every step."""
    n = batch.size
    if n < 4:
        return batch, batch
    return batch.rows(torch.arange(0, n, 2)), batch.rows(torch.arange(1, n, 2))


def _held_run(ctx: Context, lrs: list[float],
              stop: Any = None) -> tuple[list[float], list[float]]:
    """Train a copy with a fresh optimizer of the user's class on one half of the batch at
    ``lrs`` (one per step); (the loss of the other half before and after every step, the
    training half's loss at every step)."""
    fit, held = _halves(ctx.batch)
    twin = copy_model(ctx.model)
    opt = fresh_optimizer(ctx.optimizer, list(twin.parameters()), lrs[0])
    scores: list[float] = []
    params = [p for p in twin.parameters() if p.requires_grad]
    last = [torch.cat([p.detach().reshape(-1).float() for p in params])]
    ratios: list[float] = []

    def score() -> float:
        with torch.no_grad():
            v = float(forward_loss(twin, held, ctx.loss))
            now = torch.cat([p.detach().reshape(-1).float() for p in params])
            if len(scores):
                ratios.append(float((now - last[0]).norm() / (last[0].norm() + 1e-12)))
            last[0] = now
        scores.append(v if math.isfinite(v) else math.inf)
        return v
    score()
    train, _ = train_steps(twin, opt, fit, ctx.loss, len(lrs), ctx, lrs=lrs, held=score,
                           stop=None if stop is None else (lambda _: stop(scores)))
    ctx.cache["update_ratios"] = ratios
    return scores, train


def lr_range(ctx: Context) -> dict[str, Any]:
    """Exponential lr sweep on a copy with a fresh optimizer of the user's class, scored on
    the half of the first batch it does not train on."""
    user = ctx.lr
    if user is None or user <= 0:
        raise Skip("the optimizer has no numeric learning rate")
    lo, hi = max(user / SWEEP_SPAN, 1e-9), min(max(user * SWEEP_SPAN, 1.0), 1e3)
    lrs = [lo * (hi / lo) ** (i / (SWEEP_STEPS - 1)) for i in range(SWEEP_STEPS)]
    smooth: list[float] = []

    def diverged(scores: list[float]) -> bool:
        v = scores[-1]
        smooth.append(v if not smooth else 0.7 * smooth[-1] + 0.3 * v)
        return not math.isfinite(v) or (len(smooth) > 5 and smooth[-1] > DIVERGED * min(smooth))
    scores, train = _held_run(ctx, lrs, stop=diverged)
    n = len(scores) - 1                      # steps taken (scores[0] is before the first)
    if n < 10 and ctx.left() <= 0:
        raise Skip("the time budget ran out during the lr sweep")
    ended = n < SWEEP_STEPS or not math.isfinite(scores[-1])
    div_lr = lrs[n - 1] if ended and n else None
    sm = smooth[1:] or [scores[0]]
    tsm = _smoothed(train) or [scores[0]]
    if min(sm) > 0.95 * scores[0]:      # the held half never improved: judge by training
        sm = tsm
    best_i = min(range(len(sm)), key=lambda i: sm[i])
    # where the loss it trains on starts to move
    moving = next((lrs[i] for i, v in enumerate(tsm) if v < 0.95 * tsm[0]), None)
    suggested = lrs[best_i] / 10
    res: dict[str, Any] = {
        "lr": user, "optimizer": type(ctx.optimizer).__name__, "steps": n,
        "swept": [lo, lrs[max(n - 1, 0)]], "diverged_at": div_lr, "best_at": lrs[best_i],
        "moving_from": moving, "suggested": suggested,
        "suggested_range": [min(moving or suggested, suggested), suggested * 3],
        "scheduled": ctx.scheduled,
        "curves": {"lr_sweep": (["lr", "held-out loss"],
                                [[a, b] for a, b in zip(lrs, scores[1:])])}}
    too_high = div_lr is not None and user >= div_lr / 3
    too_low = moving is not None and user < moving / 10 and not ctx.scheduled
    if too_high or too_low:
        confirm = _confirm(ctx, user, lrs[best_i] / 3, too_low)
        res["curves"]["lr_confirm"] = confirm.pop("curves")
        res.update(confirm)
    return res


def _smoothed(values: list[float]) -> list[float]:
    out: list[float] = []
    for v in values:
        out.append(v if not out else 0.7 * out[-1] + 0.3 * v)
    return out


def _confirm(ctx: Context, user: float, suggested: float, slow: bool) -> dict[str, Any]:
    """Train copies at the user's lr (and, for a slow one, at the suggested lr) on half of
    the batch: the verdict rests on what the user's own setting does to the loss it
    trains on, not on the sweep alone."""
    out: dict[str, Any] = {}
    curves: list[list[float]] = []
    for key, lr in (("at_user_lr", user), ("at_suggested_lr", suggested)):
        if key == "at_suggested_lr" and not slow:
            break
        scores, train = _held_run(ctx, [lr] * CONFIRM_STEPS,
                                  stop=lambda sc: not math.isfinite(sc[-1]))
        if not train:
            raise Skip("the time budget ran out during the lr confirmation")
        # the loss of what the copy trains on: overfitting a half-batch raises the other
        # half's loss at any lr, a too-large lr raises this one
        ratios = sorted(ctx.cache.get("update_ratios") or [0.0])
        out[key] = {"lr": lr, "steps": len(train), "init": train[0], "final": train[-1],
                    "update_ratio": ratios[len(ratios) // 2], "held_max": max(scores),
                    "max": max(train), "held_init": scores[0], "held_final": scores[-1],
                    "finite": all(math.isfinite(v) for v in train + scores),
                    "complete": len(train) == CONFIRM_STEPS or not all(
                        math.isfinite(v) for v in train + scores)}
        curves.append(train)
    cols = ["your lr", "suggested lr"][:len(curves)]
    rows = [[c[i] if i < len(c) else math.nan for c in curves]
            for i in range(max(len(c) for c in curves))]
    out["curves"] = (cols, rows)
    return out


# -- 5. the label-permuted control -------------------------------------------------------
def label_control(ctx: Context) -> dict[str, Any]:
    """Fit half the batch with its real labels and with permuted ones; score the other half.
    Real labels that tell the held half no better than permuted ones do not match their
    samples (point 10), with no held-out data needed."""
    batch = ctx.batch
    n = batch.size
    need = label_samples(ctx)
    if n < need:
        raise TooFew(f"the label control needs {need} samples; {n} were at hand", need)
    y = batch.target
    if y.shape[0] < 2 or bool((y == y[:1]).all()):
        raise Skip("every sample at hand has the same target")
    fit_rows, held_rows = torch.arange(0, n, 2), torch.arange(1, n, 2)
    gen = torch.Generator().manual_seed(0)
    runs: list[dict[str, Any]] = []
    for k in range(1 + LABEL_PERMUTATIONS):
        target = y if k == 0 else y[torch.randperm(n, generator=gen).to(y.device)]
        runs.append(_fit_and_score(ctx, batch.rows(fit_rows, target),
                                   batch.rows(held_rows, target)))
    real, perms = runs[0], runs[1:]
    rows = [[r] + [p["train"][i] if i < len(p["train"]) else math.nan for p in perms]
            for i, r in enumerate(real["train"])]
    return {"samples": n, "steps": LABEL_STEPS, "real_gain": real["gain"],
            "permuted_gain": max(p["gain"] for p in perms), "held_init": real["held_init"],
            "real_held_best": real["held_best"],
            "permuted_held_best": [p["held_best"] for p in perms],
            "real_train_init": real["train"][0], "real_train_final": real["train"][-1],
            "permuted_train_final": [p["train"][-1] for p in perms],
            "curves": {"labels": (["real labels"] + [f"permuted {i + 1}" for i in
                                                     range(len(perms))], rows)}}


def label_samples(ctx: Context) -> int:
    """Samples the label control needs: twice as many for two classes (or a binary or
    real-valued target), whose held-half loss moves less with what the labels teach."""
    classes = ctx.classes
    return LABEL_MIN_BATCH if classes is not None and classes >= 3 else 2 * LABEL_MIN_BATCH


def _fit_and_score(ctx: Context, fit: Batch, held: Batch) -> dict[str, Any]:
    twin = copy_model(ctx.model)
    opt = safe_optimizer(list(twin.parameters()), SAFE_LR)

    calls = [-1]

    def held_loss() -> float:
        calls[0] += 1
        if calls[0] % HELD_EVERY and calls[0] < LABEL_STEPS:
            return math.nan
        mode = twin.training
        twin.eval()
        with torch.no_grad():
            v = float(forward_loss(twin, held, ctx.loss))
        twin.train(mode)
        return v
    start = held_loss()
    calls[0] = 0
    train, helds = train_steps(twin, opt, fit, ctx.loss, LABEL_STEPS, ctx, held=held_loss)
    if len(train) < LABEL_STEPS:
        raise Skip("the time budget ran out during the label control")
    best = min([start, *[v for v in helds if math.isfinite(v)]])
    return {"train": train, "held_init": start, "held_best": best,
            "gain": (start - best) / start if start > 0 else 0.0}


def _qualify(root: str, sub: str) -> str:
    return f"{root}.{sub}" if sub else root


#: in order of cost: the cheap ones first, so a tight budget keeps them
EXPERIMENTS = [("init_loss", init_loss), ("overfit", overfit), ("inputs", inputs_used),
               ("lr_range", lr_range), ("labels", label_control)]
