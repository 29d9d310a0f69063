"""Ordinary training steps on CUDA under torch.cuda.set_sync_debug_mode("error").

For each model of the benchmark and for the default and ``--every 1``:

- a control: the bare loop under "error" (a sync of torch's own would void the check);
- the first steps (the before-harm audits of the first LABEL_STEPS steps) under "warn",
  listing any sync they make;
- every later step under "error": any host sync made while the loop runs (by nbdebug or
  by torch on its behalf) raises. The flush that copies statistics to the host (one sync
  per flush window, allowed) is moved past the loop.

Then a parity check: the same healthy run on the CPU and on CUDA must give the same
warnings and problems. Exits non-zero on a sync, an internal error or a mismatch.

    python benchmarks/gpu_sync_check.py
"""

from __future__ import annotations

import sys
import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nbdebug
from nbdebug.capture import sampling

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from overhead import make  # noqa: E402

WARM = sampling.LABEL_STEPS + 5       # the audited first steps, checked under "warn"
STEPS = 100


def _loop(name: str, device: str, steps: int, session=None, on_step=None):
    torch.manual_seed(0)
    model, X, y = make(name)
    model, X, y = model.to(device), X.to(device), y.to(device)
    loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    step = 0
    with session if session is not None else _Null():
        while step < steps:
            for xb, yb in loader:
                if on_step is not None:
                    on_step(step)
                loss = nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step == steps:
                    break
        torch.cuda.set_sync_debug_mode(0)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def check(name: str, every: int | None) -> tuple[bool, str]:
    label = f"{name}, {'default' if every is None else f'--every {every}'}"
    try:                                            # control: the bare loop makes no sync
        _loop(name, "cuda", STEPS, on_step=lambda s: torch.cuda.set_sync_debug_mode(
            "error" if s >= WARM else 0))
    except RuntimeError as exc:
        return True, f"{label}: bare loop syncs on its own ({exc}); not checked"
    due = sampling.Flushes.due
    sampling.Flushes.due = lambda self, step, held=0: False   # no flush in the checked loop
    kw = {} if every is None else {"every": every}
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            _loop(name, "cuda", STEPS, nbdebug.diagnose(quiet=True, **kw),
                  lambda s: torch.cuda.set_sync_debug_mode(
                      "error" if s >= WARM else "warn"))
        except RuntimeError as exc:
            return False, f"{label}: a sync on an ordinary step: {exc}"
        finally:
            sampling.Flushes.due = due
            torch.cuda.set_sync_debug_mode(0)
    early = sorted({f"{w.filename.rsplit('/', 1)[-1]}:{w.lineno}" for w in seen
                    if "synchroniz" in str(w.message)})
    report = nbdebug.last_report()
    if report.errors:
        return False, f"{label}: internal errors {[e.get('error') for e in report.errors]}"
    if report.run["steps"] != STEPS:
        return False, f"{label}: {report.run['steps']} steps seen, {STEPS} run"
    return True, (f"{label}: steps {WARM}-{STEPS - 1} under 'error', no host sync; "
                  f"syncs in the audited first steps: {early or 'none'}; "
                  f"overhead {report.run['overhead']:.2%}")


def parity(name: str) -> tuple[bool, str]:
    """The same healthy run on the CPU and on CUDA: the same warnings and problems."""
    found = {}
    for device in ("cpu", "cuda"):
        _loop(name, device, 200, nbdebug.diagnose(quiet=True))
        report = nbdebug.last_report()
        if report.errors:
            return False, f"{name} on {device}: internal errors {report.errors}"
        found[device] = sorted((f.check, f.severity) for f in report.findings
                               if f.severity in ("warning", "problem"))
    same = found["cpu"] == found["cuda"]
    return same, f"{name}: CPU {found['cpu'] or 'no warning'}, CUDA {found['cuda'] or 'no warning'}"


def main() -> int:
    if not torch.cuda.is_available():
        sys.exit("no CUDA device")
    ok = True
    for name in ("mlp", "cnn", "gru", "transformer"):
        for every in (None, 1):
            good, line = check(name, every)
            ok &= good
            print(("ok   " if good else "FAIL ") + line, flush=True)
    for name in ("mlp", "cnn", "gru", "transformer"):
        good, line = parity(name)
        ok &= good
        print(("same " if good else "DIFF ") + line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
