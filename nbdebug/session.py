"""One diagnosis: attach capture, run, detach in ``finally``, build the report, show it."""

from __future__ import annotations

import sys
import time
import traceback
from typing import Any, Callable, Literal

from .errors import entry as _error_entry
from .errors import one_line as _one_line
from .options import (DEFAULT_EVERY, OptionError, Settings, budget_seconds, positive_int, resolve,
                      validate_checks)
from .quiet import quiet
from .report import NOTHING, Report

_LAST: list[Report] = []
#: told when a diagnosis starts and ends (the sidebar): ``started(session)`` before the
#: capture attaches (it may add ``session.listeners``), ``ended(session)`` once the report
#: exists; an error in one is recorded as an internal error, never raised
WATCHERS: list[Any] = []


def open_session(settings: Settings, namespace: dict[str, Any] | None = None,
                 show: Callable[[Report], None] | None = None) -> Session:
    """The one way a diagnosis starts (the magic, the API and the command line).

    A mistake in the settings raises ``OptionError`` (the caller says it in one line); a
    failure of nbdebug's own gives a Session that watches nothing and lets the code run as
    without it, its report listing the error."""
    try:
        return Session(settings, namespace, show=show)
    except OptionError:
        raise
    except Exception:
        return Session.unstarted(settings, namespace, show=show)


def last_report() -> Report | None:
    """The report of the last diagnosis in this process (None before the first)."""
    return _LAST[-1] if _LAST else None


class Session:
    """Context manager behind ``%%diagnose`` and ``nbdebug.diagnose()``.

    Exceptions of the watched code propagate unchanged; the report of what was seen before
    them is still built, saved and shown.
    """

    def __init__(self, settings: Settings, namespace: dict[str, Any] | None = None,
                 show: Callable[[Report], None] | None = None) -> None:
        import torch
        from torch.utils.data import DataLoader

        self.settings = settings
        self.namespace = namespace if namespace is not None else {}
        self.adaptive = settings.every is None
        settings.every = DEFAULT_EVERY if self.adaptive else positive_int(settings.every)
        self.check_ids = validate_checks(settings.checks)
        settings.preflight_budget = budget_seconds(settings.preflight_budget)
        if settings.preflight_budget is not None and not settings.preflight:
            raise OptionError("--preflight-budget sets the time of the pre-flight "
                              "experiments: add --preflight")
        if settings.preflight:
            from .checks import presets
            self.check_ids += [c for c in presets().get("preflight", [])
                               if c not in self.check_ids]
        ns = self.namespace
        model = resolve(settings.model, ns, "--model", torch.nn.Module, "model")
        opt = resolve(settings.optimizer, ns, "--optimizer", torch.optim.Optimizer, "optimizer")
        loaders = []
        for ld in settings.loaders:
            obj = ns.get(ld) if isinstance(ld, str) else ld
            if isinstance(ld, str) and ld not in ns:
                raise OptionError(f"--loader {ld}: no variable named {ld!r} here; define the "
                                  "loader first, or leave --loader out")
            if not isinstance(obj, DataLoader) and not hasattr(obj, "__iter__"):
                raise OptionError(f"--loader {ld}: a {type(obj).__name__} is not iterable")
            loaders.append(obj)
        self._show = show
        #: callables given the Observations at every flush (live views)
        self.listeners: list[Callable[[Any], None]] = []
        self.report: Report | None = None
        #: internal errors met outside the capture (watchers, the live view's set-up, the
        #: renderers of the report): listed in ``report.errors`` like the capture's own
        self.errors: list[dict[str, str]] = []
        #: False when nbdebug could not start watching: the cell then runs undiagnosed
        self.watching = True
        self._capture_args = (model, opt, loaders)
        self.capture: Any = None
        self.merger: Any = None           # nbdebug.distributed.Merger under torchrun / DDP
        self._merger_closed = False
        self._obs: Any = None
        self._t0 = 0.0

    @classmethod
    def unstarted(cls, settings: Settings, namespace: dict[str, Any] | None = None,
                  show: Callable[[Report], None] | None = None) -> Session:
        """The Session of a cell nbdebug failed to prepare (call it from the ``except`` of
        that failure, not of a usage error): it watches nothing, lets the cell run as
        without it, and its report lists the error."""
        self = cls.__new__(cls)
        self.settings, self.namespace, self._show = settings, namespace or {}, show
        self.check_ids, self.listeners, self.report = [], [], None
        self.errors, self.watching, self.adaptive = [], False, False
        self._capture_args = (None, None, [])
        self.capture = self.merger = self._obs = None
        self._merger_closed = False
        self._t0 = time.perf_counter()
        self.internal_error("set-up")
        return self

    def __enter__(self) -> Session:
        from .capture import Capture, Options
        from .observations import Observations

        model, opt, loaders = self._capture_args
        self._t0 = time.perf_counter()
        if not self.watching:
            return self
        try:
            options = Options(every=positive_int(self.settings.every), adaptive=self.adaptive,
                              models=[model] if model is not None else [],
                              optimizers=[opt] if opt is not None else [],
                              loaders=[ld for ld in loaders if _is_dataloader(ld)])
            self.capture = Capture(options, Observations(), namespace=lambda: self.namespace)
            if self.settings.preflight:
                from .preflight import Preflight
                self.capture.preflight = Preflight(self.settings.preflight_budget)
        except Exception:
            self._not_watching()
            return self
        self._tell("started")
        self.capture.listeners.extend(self.listeners)
        self.capture.live = bool(self.listeners)
        self._t0 = time.perf_counter()
        try:
            self.capture.attach()
            from .distributed import attach, attach_on_init
            self.merger = attach(self)
            if self.merger is None:
                attach_on_init(self)
        except Exception:
            # invariant 3: nbdebug could not start watching; the cell runs as without it
            self._not_watching()
        except BaseException:
            self._unwatch()
            raise
        return self

    def _unwatch(self) -> None:
        """Remove every hook and patch (idempotent)."""
        if self.capture is not None:
            self.capture.detach()
        if self.merger is not None and not self._merger_closed:
            self._merger_closed = True    # (kept: the report is merged through it)
            self.merger.close()

    def _not_watching(self) -> None:
        """Starting the diagnosis failed: undo it, record why; the cell runs undiagnosed."""
        self.internal_error("attach")
        self.watching = False
        try:
            self._unwatch()
        except Exception:
            self.internal_error("detach")
        self.merger = None                # nothing to merge: every rank reports alone

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        self._unwatch()
        from .capture.core import StopTraining
        status = "done"
        if exc_type is not None:
            if issubclass(exc_type, StopTraining):
                status = "stopped"
            elif issubclass(exc_type, KeyboardInterrupt):
                status = "interrupted"
            else:
                status = "exited" if issubclass(exc_type, SystemExit) else "failed"
        try:
            with quiet():
                self.report = self._build(status, exc) if self.watching else \
                    self._unwatched(status, exc)
        except Exception:
            self.report = _broken_report(status)
            self.report.errors += list(self.errors) + list(getattr(self.capture, "errors", []))
            self._with_tracebacks(self.report.errors)
        _LAST[:] = [self.report]
        with quiet():
            self._tell("ended")
            self._deliver()
        if status in ("stopped", "interrupted"):
            self._one_line_stop(exc)
        return False

    def _one_line_stop(self, exc: BaseException | None) -> None:
        """A stop (the sidebar) or an interrupt ends the cell with one line, not a traceback
        through torch's hooks and nbdebug: the exception itself still propagates (the cell
        fails, queued cells do not run) and renders, in IPython, as that line."""
        if exc is None:
            return
        steps = (self.report.run.get("steps", 0) if self.report is not None else 0)
        where = ("nbdebug.last_report() has the report" if self.settings.quiet
                 else "report above")
        line = f"Training stopped at step {steps}; {where}"
        try:
            exc._render_traceback_ = lambda: [line]        # type: ignore[attr-defined]
        except Exception:
            pass                          # an exception type without a __dict__: as before

    def _unwatched(self, status: str, exc: BaseException | None) -> Report:
        """The report of a cell nbdebug could not watch: how it ended, and why not."""
        report = Report(run={"status": status, "steps": 0, "epochs": 0,
                             "seconds": round(time.perf_counter() - self._t0, 4),
                             "checks": self.check_ids})
        if exc is not None:
            report.run["exception"] = f"{type(exc).__name__}: {exc}"[:500]
        report.notes = ["not watched: nbdebug could not start (an internal error, listed in "
                        "errors); the cell ran as it does without %%diagnose"]
        report.errors = list(self.errors)
        if self.capture is not None:
            report.errors += list(self.capture.errors)
        self._with_tracebacks(report.errors)
        return report

    def _with_tracebacks(self, errors: list[dict[str, str]]) -> None:
        """Every entry carries a traceback (the capture's clean-up gives only a message)."""
        tracebacks = getattr(getattr(self.capture, "patches", None), "tracebacks", {})
        for error in errors:
            if not error.get("traceback"):
                error["traceback"] = tracebacks.get(error.get("error", ""), "") or str(
                    error.get("error", ""))

    def show_with(self, show: Callable[[Report], None]) -> None:
        """Show the report with ``show`` when the diagnosis ends (the live dashboard's hand-
        over to the static report); the text report stands in if it fails."""
        self._show = show

    def internal_error(self, where: str) -> None:
        """Record the exception being handled as an internal error (call from ``except``)."""
        error = _error_entry(where)
        if self.report is not None:
            self.report.errors.append(error)
        else:
            self.errors.append(error)

    def _tell(self, event: str) -> None:
        for watcher in list(WATCHERS):
            try:
                getattr(watcher, event)(self)
            except Exception:
                self.internal_error(f"watcher {event}")

    def _build(self, status: str, exc: BaseException | None) -> Report:
        from .checks import checklist, run_checks
        from .observations import Observations

        obs: Observations = self.observations()
        t0 = time.perf_counter()
        if self.merger is not None:
            run = self.merger.exchange(obs, self.check_ids)
        else:
            run = run_checks(obs, self.check_ids)
        # the checks' time is nbdebug's too: the overhead shown counts it
        self.capture.cost.fixed += time.perf_counter() - t0
        report = Report(findings=run.findings, checklist=checklist(run))
        overhead = self.capture.overhead()
        report.run = {
            "status": status, "steps": obs.steps, "epochs": obs.epochs,
            "seconds": round(time.perf_counter() - self._t0, 4),
            "backward_calls": obs.backward_calls, "every": obs.every,
            "overhead": overhead,
            "overhead_seconds": own_seconds(overhead, time.perf_counter() - self._t0),
            "sampling": self.capture.sampling(),
            "models": [{"name": m.name, "type": m.type,
                        "parameters": sum(p.numel for p in m.params)} for m in obs.models],
            "optimizers": [{"name": o.name, "type": o.type, "steps": o.steps}
                           for o in obs.optimizers],
            "loaders": [{"name": ld.name, "role": ld.role, "batches": ld.batches,
                         "epochs": ld.epochs} for ld in obs.loaders],
            "losses": [c.fn for c in obs.losses],
            "loss_graph": obs.extra.get("loss_graph", [])[:4],
            "checks": self.check_ids,
        }
        if obs.preflight:
            report.run["preflight"] = {k: obs.preflight[k] for k in (
                "ran", "skipped", "seconds", "step", "gathered") if k in obs.preflight}
        if self.merger is not None:
            report.run["distributed"] = self.merger.facts()
        if exc is not None:
            report.run["exception"] = f"{type(exc).__name__}: {exc}"[:500]
        report.timelines = {k: s.to_dict() for k, s in obs.timelines.items()}
        report.notes = list(obs.notes)
        if not obs.models and not obs.trained:
            report.notes.insert(0, f"{NOTHING}: the cell ran no forward pass of a "
                                   "model with parameters and called no .backward()")
        report.errors = list(self.errors) + list(self.capture.errors) + run.errors
        self._with_tracebacks(report.errors)
        return report

    def observations(self) -> Any:
        """The finished Observations (the last step closed, buffers flushed); made once."""
        if self._obs is None:
            self._obs = self.capture.finish()
        return self._obs

    def _deliver(self) -> None:
        """Save, show, then one line about nbdebug's own errors: a failure in any of them
        (a renderer included) is recorded and never reaches the cell."""
        report = self.report
        assert report is not None
        if self.merger is not None and not self.merger.leader:
            return                        # rank 0 prints and saves the merged report
        self._save(report)                # first: the file exists whatever happens next
        if not self.settings.quiet and self.watching:   # (unwatched: the line below says it)
            before = len(report.errors)
            self._render(report)
            if len(report.errors) > before and self.settings.save:
                self._save(report, quiet=True)   # the saved report lists the render error
        if report.errors:
            n = len(report.errors)
            print(f"nbdebug: {n} internal error{'s' * (n != 1)} while watching (training "
                  f"unaffected; first: {_one_line(report.errors[0].get('error', ''))}); "
                  "see nbdebug.last_report().errors", file=sys.stderr)

    def _save(self, report: Report, quiet: bool = False) -> None:
        if not self.settings.save:
            return
        try:
            report.save(self.settings.save)
        except Exception as exc:
            if not quiet:
                print(f"nbdebug: could not save the report to {self.settings.save}: "
                      f"{_one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)

    def _render(self, report: Report) -> None:
        """Show the report (live view hand-over, or text); the text is the fallback."""
        if self._show is not None:
            try:
                self._show(report)
                return
            except Exception:
                self.internal_error("show the report")
        try:
            from .ui.text import render_text
            text = render_text(report)
        except Exception:
            self.internal_error("text report")
            return
        print(text)


def own_seconds(share: float | None, seconds: float) -> float | None:
    """nbdebug's own seconds in a run of ``seconds`` where its share of the rest is
    ``share``."""
    return None if share is None else round(seconds * share / (1 + share), 4)


def _is_dataloader(obj: Any) -> bool:
    from torch.utils.data import DataLoader
    return isinstance(obj, DataLoader)


def _broken_report(status: str) -> Report:
    return Report(run={"status": status}, errors=[{
        "where": "report", "error": "the report could not be built",
        "traceback": traceback.format_exc()}])
