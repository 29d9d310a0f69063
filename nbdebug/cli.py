"""``python -m nbdebug [flags] script.py [args]``: run a script under diagnosis.

Like ``python -m cProfile``: the script runs as ``__main__`` with the ``sys.argv`` it
expects, its exit status is kept (``sys.exit(n)`` exits ``n``, an uncaught exception
prints its traceback and exits 1), and the checklist is printed to stderr at the end, so
the script's own stdout stays clean. Under torchrun every rank runs this; rank 0 prints
and saves one merged report (see ``nbdebug.distributed``). Ranks the script starts itself
(``mp.spawn``, ``multiprocessing``) are followed the same way (``nbdebug.launch``).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import traceback
import types
from typing import Any

from ._version import __version__
from .options import (DEFAULT_EVERY, OptionError, Settings, budget_seconds, positive_int,
                      validate_checks)

#: nbdebug flags that take a value (the others are switches)
_VALUED = ("--save", "--every", "--checks", "--preflight-budget")

USAGE = "nbdebug [--save PATH] [--every N] [--checks LIST] [--quiet] [--preflight] " \
        "[--preflight-budget SECONDS] (script.py | -m module) [args ...]"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nbdebug", usage=USAGE,
        description="Run a PyTorch training script under diagnosis and print the checklist "
                    "of the twenty debugging points at the end. Works under torchrun: "
                    "torchrun --nproc-per-node N -m nbdebug [flags] train.py [args]; the "
                    "ranks a script starts with mp.spawn or multiprocessing are followed.")
    p.add_argument("--save", metavar="PATH", default=None,
                   help="write the report as JSON (schema nbdebug.report/1) to PATH "
                        "(under torchrun: rank 0 writes the merged report)")
    p.add_argument("--every", metavar="N", default=None,
                   help=f"take activation and update statistics every N steps (default: "
                        f"{DEFAULT_EVERY}, stretched while they would cost over 1%% of a "
                        f"step); the NaN guard runs every step")
    p.add_argument("--checks", metavar="PRESET_OR_LIST", default="default",
                   help="which checks run: a preset (default, all, setup, dynamics, none), "
                        "check ids or point numbers, comma-separated; '-id' removes one")
    p.add_argument("--quiet", action="store_true", help="do not print the report at the end")
    p.add_argument("--preflight", action="store_true",
                   help="at the first step, run on copies the experiments an expert runs "
                        "before a long training (loss at init, overfit one batch, lr range "
                        "test, zeroed inputs, permuted labels); the training is unchanged")
    p.add_argument("--preflight-budget", metavar="SECONDS", default=None,
                   help="time budget of --preflight (default: the smaller of 30 s and 20%% "
                        "of an estimated epoch)")
    p.add_argument("--version", action="version", version=f"nbdebug {__version__}")
    return p


def split_argv(argv: list[str]) -> tuple[list[str], str | None, str | None, list[str]]:
    """(nbdebug flags, script path, module name, script args): flags stop at the target."""
    flags: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "-m":
            if i + 1 >= len(argv):
                return flags + [tok], None, None, []
            return flags, None, argv[i + 1], argv[i + 2:]
        if tok == "--":
            rest = argv[i + 1:]
            return flags, (rest[0] if rest else None), None, rest[1:]
        if not tok.startswith("-") or tok == "-":
            return flags, tok, None, argv[i + 1:]
        flags.append(tok)
        if tok in _VALUED and i + 1 < len(argv):
            flags.append(argv[i + 1])
            i += 1
        i += 1
    return flags, None, None, []


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m nbdebug`` and the ``nbdebug`` command; returns the status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    flag_args, script, module, script_args = split_argv(argv)
    args = parser.parse_args(flag_args)
    if script is None and module is None:
        parser.error("give the script to run (nbdebug train.py) or a module (-m package.train)")
    try:                                  # flag mistakes first: before torch is imported
        if args.every is not None:
            positive_int(args.every)
        validate_checks(args.checks)
        budget_seconds(args.preflight_budget)
        if args.preflight_budget is not None and not args.preflight:
            raise OptionError("--preflight-budget sets the time of the pre-flight "
                              "experiments: add --preflight")
    except OptionError as exc:
        parser.error(str(exc))
    try:
        code, main_module = _load(script, module)
    except (OSError, ImportError, SyntaxError) as exc:
        what = script if script is not None else f"-m {module}"
        print(f"nbdebug: cannot run {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    from .session import open_session
    shown: list[Any] = []
    settings = Settings(every=args.every, checks=args.checks, save=args.save, quiet=args.quiet,
                        preflight=args.preflight, preflight_budget=args.preflight_budget)
    try:
        session = open_session(settings, main_module.__dict__, show=shown.append)
    except OptionError as exc:
        parser.error(str(exc))
    from .launch import install
    # ranks the script starts itself (mp.spawn, multiprocessing) get the same flags
    launcher = install(session, dict(
        every=args.every, checks=args.checks, quiet=args.quiet, preflight=args.preflight,
        preflight_budget=args.preflight_budget,
        save=os.path.abspath(args.save) if args.save else None))
    sys.argv[:] = [main_module.__file__ or "", *script_args]
    return _run(code, main_module, session, shown, launcher)


def _load(script: str | None, module: str | None) -> tuple[types.CodeType, types.ModuleType]:
    """The code to run and a fresh ``__main__`` module for it, like ``python script.py``."""
    main_module = types.ModuleType("__main__")
    ns = main_module.__dict__
    if script is not None:
        path = os.path.abspath(script)
        with io.open_code(path) as fh:
            code = compile(fh.read(), script, "exec")
        ns.update(__file__=script, __cached__=None, __package__=None, __spec__=None,
                  __loader__=None)
        sys.path.insert(0, os.path.dirname(path))
    else:
        assert module is not None
        spec = importlib.util.find_spec(module)
        if spec is None:
            raise ImportError(f"no module named {module!r}")
        if spec.submodule_search_locations is not None:      # a package: run its __main__
            spec = importlib.util.find_spec(f"{module}.__main__")
            if spec is None:
                raise ImportError(f"{module!r} is a package and has no __main__")
        if spec.loader is None or not hasattr(spec.loader, "get_code"):
            raise ImportError(f"{module!r} has no Python code to run")
        code = spec.loader.get_code(spec.name)
        if code is None:
            raise ImportError(f"{module!r} has no Python code to run")
        ns.update(__file__=spec.origin, __cached__=spec.cached, __package__=spec.parent,
                  __spec__=spec, __loader__=spec.loader)
        sys.path.insert(0, os.getcwd())
    ns["__builtins__"] = __builtins__
    return code, main_module


def _run(code: types.CodeType, main_module: types.ModuleType, session: Any,
         shown: list[Any], launcher: Any = None) -> int:
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = main_module       # pickling and spawn find the script's names
    status = 0
    try:
        with session:
            exec(code, main_module.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt as exc:
        _print_traceback(exc)
        status = 130
    except BaseException as exc:  # noqa: BLE001 - the script's own error, reported like python
        _print_traceback(exc)
        status = 1
    finally:
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
    if launcher is not None and not launcher.finish(session.report):
        shown.clear()                     # the ranks it started reported; it trained nothing
    _show(shown)
    return status


def _exit_status(code: Any) -> int:
    """What the interpreter would exit with for ``sys.exit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_traceback(exc: BaseException) -> None:
    """The traceback as python prints it, starting at the script (no nbdebug frames)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    sys.stdout.flush()
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


def _show(shown: list[Any]) -> None:
    if not shown:
        return
    try:
        from .ui.text import render_text
        sys.stdout.flush()
        print(render_text(shown[-1]), file=sys.stderr)
        sys.stderr.flush()
    except Exception as exc:  # noqa: BLE001 - never turn a finished run into a failure
        print(f"nbdebug: could not show the report ({type(exc).__name__}: {exc})",
              file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
