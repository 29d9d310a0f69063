"""Ranks a script starts itself: ``torch.multiprocessing.spawn`` (or ``start_processes``)
and ``multiprocessing.Process``, with the spawn, forkserver or fork start method.

``python -m nbdebug script.py`` runs the script in the launcher process. While it runs,
``Process.start`` is watched: a process whose target is a function of the user's own code
(the script or the user's own modules; never a DataLoader worker, a pool worker or a
library's process) gets a ``Child`` in its place, which opens the child's own diagnosis
with the same flags around the unchanged call. ``torch.multiprocessing.spawn`` starts
torch's ``_wrap(fn, ...)``: there the user's ``fn`` is the one replaced. A ``Child`` pickles
as nbdebug's class plus the user's function by reference, so spawned children find it as
they would find the bare function.

In the child, the Merger attaches when the script calls ``init_process_group``
(``nbdebug.distributed``) and rank 0 prints and saves one merged report, as under
torchrun. A child in no process group prints its own report, saved next to the ``--save``
path under its process name. A child that trained nothing stays silent. A child forked
from the launcher first drops the watch it inherited, silently: nothing is counted twice.
The launcher trained nothing itself: its own report is dropped once a child was
watched (unless each such child said it trained nothing). Calls, results, exceptions and
exit codes are those of the bare script; a failure of this machinery is one line on
stderr and the script runs as without it.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from typing import Any

from .capture.patches import Patches, user_file
from .errors import one_line

#: the launchers of this process; a child forked from one finds its parent's here
_LAUNCHERS: list[Launcher] = []


def install(session: Any, flags: dict[str, Any]) -> Launcher | None:
    """Follow the processes the script starts, for the diagnosis ``session`` of the launcher;
    ``flags`` are the settings each child's diagnosis is opened with."""
    try:
        launcher = Launcher(session, flags)
        launcher.install()
        _LAUNCHERS.append(launcher)
        return launcher
    except Exception as exc:
        _say("cannot follow the processes the script starts (they run unwatched)", exc)
        return None


class Launcher:
    """Watches ``Process.start`` in the launcher process and hands targets to ``Child``."""

    def __init__(self, session: Any, flags: dict[str, Any]) -> None:
        self.session = session
        self.flags = dict(flags)
        self.patches = Patches()
        #: a folder where each watched child leaves a file (made at the first child)
        self.marks: str | None = None
        self._failed = False

    def install(self) -> None:
        from multiprocessing.process import BaseProcess
        original = BaseProcess.start

        @functools.wraps(original)
        def start(process: Any) -> None:
            self.adopt(process)
            return original(process)
        self.patches.patch(BaseProcess, "start", start)

    def adopt(self, process: Any) -> None:
        """Replace the user's function a process is about to run by a ``Child`` of it."""
        try:
            target = process._target
            spawn = sys.modules.get("torch.multiprocessing.spawn")
            if spawn is not None and target is getattr(spawn, "_wrap", None):
                args = tuple(process._args)             # (fn, i, args, error file)
                if args and _users(args[0]):
                    process._args = (self._child(args[0]),) + args[1:]
            elif _users(target):
                process._target = self._child(target)
            elif target is None and _users(type(process).run):    # a Process subclass
                process.run = self._child(type(process).run, method=True)
        except Exception as exc:
            if not self._failed:
                self._failed = True
                _say("cannot watch a process the script starts (it runs unwatched)", exc)

    def _child(self, fn: Any, method: bool = False) -> Child:
        if self.marks is None:
            self.marks = tempfile.mkdtemp(prefix="nbdebug-ranks-")
            self.session.settings.save = None     # the children's reports take the path
        return Child(fn, self.flags, self.marks, method)

    def finish(self, report: Any) -> bool:
        """Stop following. True when the launcher's own report is to be shown: it trained,
        or no child was watched or each said it trained nothing (then it is saved here,
        the session having left it)."""
        self.patches.remove_all()
        if self in _LAUNCHERS:
            _LAUNCHERS.remove(self)
        if self.marks is None:
            return True
        try:
            reported = bool(os.listdir(self.marks))
        except OSError:
            reported = False
        shutil.rmtree(self.marks, ignore_errors=True)
        own = report is not None and not report.nothing_trained()
        save = self.flags.get("save")
        if save and report is not None and (own or not reported):
            path = _beside(save, "launcher") if reported else save
            try:
                report.save(path)
            except Exception as exc:
                _say(f"could not save the report to {path}", exc)
        return own or not reported

    def drop(self) -> None:
        """In a child forked from the launcher: stop the launcher's watch it inherited, with
        no report (the launcher makes its own) and without touching the parent's files."""
        if self in _LAUNCHERS:
            _LAUNCHERS.remove(self)
        self.marks = None
        self.patches.remove_all()
        try:
            self.session._unwatch()
        except Exception:
            pass


class Child:
    """A process target run inside its own diagnosis; the call itself is unchanged."""

    def __init__(self, fn: Any, flags: dict[str, Any], marks: str, method: bool = False) -> None:
        self.fn = fn
        self.flags = flags
        self.marks = marks
        #: ``fn`` is a Process subclass's ``run``, called on the process running it
        self.method = method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.method:
            import multiprocessing
            args = (multiprocessing.current_process(), *args)
        session = self._open()
        if session is None:
            return self.fn(*args, **kwargs)
        with session:
            return self.fn(*args, **kwargs)

    def _open(self) -> Any:
        try:
            for launcher in list(_LAUNCHERS):   # forked: the launcher's watch came along
                launcher.drop()
            from .options import Settings
            from .session import open_session
            settings = Settings(**{**self.flags, "save": None, "quiet": False})
            fn = self.fn
            while isinstance(fn, functools.partial):
                fn = fn.func
            session = open_session(settings, getattr(fn, "__globals__", None),
                                   show=Deliver(self.flags, self.marks))
        except Exception as exc:
            _say("cannot watch this process (it runs unwatched)", exc)
            return None
        try:
            with open(_mark(self.marks), "w"):   # watched: the launcher leaves the word to us
                pass
        except OSError:
            pass
        return session


class Deliver:
    """A child's report: saved and printed (rank 0 only, in a process group), unless the
    child trained nothing."""

    def __init__(self, flags: dict[str, Any], marks: str) -> None:
        self.flags = flags
        self.marks = marks

    def __call__(self, report: Any) -> None:
        if report.nothing_trained():      # a helper: the launcher speaks if none trained
            try:
                os.unlink(_mark(self.marks))
            except OSError:
                pass
            return
        import multiprocessing
        merged = bool(report.run.get("distributed"))
        name = multiprocessing.current_process().name
        save = self.flags.get("save")
        if save:
            path = save if merged else _beside(save, name)
            try:
                report.save(path)
            except Exception as exc:
                _say(f"could not save the report to {path}", exc)
        if self.flags.get("quiet"):
            return
        from .ui.text import render_text
        text = render_text(report)
        sys.stdout.flush()
        print(text if merged else f"nbdebug: the report of process {name}\n{text}",
              file=sys.stderr)
        sys.stderr.flush()


def _users(fn: Any) -> bool:
    """Whether ``fn`` is a function of the user's own code (not a library's)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)              # a bound method
    code = getattr(fn, "__code__", None)
    return code is not None and user_file(code.co_filename)


def _mark(marks: str) -> str:
    """This child's file in the launcher's folder: it exists while the child is watched
    and after it reported (a child that trained nothing removes it)."""
    return os.path.join(marks, str(os.getpid()))


def _beside(path: str, name: str) -> str:
    """``report.json`` -> ``report-NAME.json``."""
    root, ext = os.path.splitext(path)
    return f"{root}-{name}{ext}"


def _say(what: str, exc: BaseException) -> None:
    print(f"nbdebug: {what}: {one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
