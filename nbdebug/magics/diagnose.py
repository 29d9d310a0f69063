"""``%%diagnose``: run the cell body under a diagnosis, with normal notebook semantics.

The body is compiled with IPython's own compiler and cached under the cell's number, so
tracebacks read "Cell In[n]", a failing body fails the cell, and the last expression is
the cell's value. The report is still built when the body fails or is interrupted.
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..options import DEFAULT_EVERY, OptionError, Settings


@magics_class
class DiagnoseMagics(Magics):

    @magic_arguments()
    @argument("--save", metavar="PATH", default=None,
              help="write the report as JSON (schema nbdebug.report/1) to PATH")
    @argument("--every", metavar="N", default=None,
              help=f"take activation and update statistics every N steps (default: "
                   f"{DEFAULT_EVERY}, stretched while they would cost over 1%% of a step); "
                   f"the NaN guard runs every step")
    @argument("--quiet", action="store_true", help="do not print the report at the end")
    @argument("--keep-live", action="store_true",
              help="in a notebook, keep the live dashboard widget at the end instead of "
                   "replacing it with the static report (which saved notebooks show)")
    @argument("--checks", metavar="PRESET_OR_LIST", default="default",
              help="which checks run: a preset (default, all, setup, dynamics, none), "
                   "check ids or point numbers, comma-separated; '-id' removes one")
    @argument("--model", metavar="NAME", default=None,
              help="watch this model (a variable name) instead of finding it")
    @argument("--optimizer", metavar="NAME", default=None,
              help="watch this optimizer (a variable name) instead of finding it")
    @argument("--loader", metavar="NAME", action="append", default=[],
              help="watch this data loader (a variable name); repeat for several")
    @argument("--preflight", action="store_true",
              help="at the first step, run on copies the experiments an expert runs before "
                   "a long training (loss at init, overfit one batch, lr range test, "
                   "zeroed inputs, permuted labels); the training itself is unchanged")
    @argument("--preflight-budget", metavar="SECONDS", default=None,
              help="time budget of --preflight (default: the smaller of 30 s and 20%% of "
                   "an estimated epoch)")
    @cell_magic
    def diagnose(self, line: str, cell: str) -> Any:
        """Diagnose the training in this cell against the article's twenty points.

        Without flags nbdebug finds the model, optimizer(s), data loaders and loss the
        cell uses, watches loss, gradients and activations while it trains, and prints a
        checklist at the end. ``nbdebug.last_report()`` returns the report.
        """
        __tracebackhide__ = True  # noqa: F841  (IPython hides this frame)
        args = parse_argstring(self.diagnose, line)
        if not cell.strip():
            raise UsageError("%%diagnose needs the training code in the cell below the "
                             "magic line")
        from ..session import open_session
        shell = self.shell
        assert shell is not None                  # (a magic always runs in a shell)
        settings = Settings(every=args.every, checks=args.checks, save=args.save,
                            quiet=args.quiet, model=args.model, optimizer=args.optimizer,
                            loaders=list(args.loader), preflight=args.preflight,
                            preflight_budget=args.preflight_budget)
        try:
            session = open_session(settings, shell.user_ns)
        except OptionError as exc:
            raise UsageError(str(exc)) from None
        code, last = self._compile(cell)
        from .display import attach_dashboard
        attach_dashboard(session, shell, keep_live=args.keep_live)
        with session:
            exec(code, shell.user_ns)
            if last is not None:
                return eval(last, shell.user_ns)
        return None

    def _compile(self, cell: str) -> tuple[Any, Any]:
        shell: Any = self.shell
        source = shell.transform_cell(cell)
        # one leading line stands for "%%diagnose": line numbers match the cell's
        source = "\n" + source
        filename = shell.compile.cache(source, _cell_number(shell), raw_code=source)
        tree = shell.compile.ast_parse(source, filename=filename)
        tree = shell.transform_ast(tree)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            expr = ast.Expression(tree.body.pop().value)
            last = shell.compile(expr, filename, "eval")
        code = shell.compile(tree, filename, "exec")
        return code, last

    @line_magic
    def nbdebug(self, line: str) -> None:
        """%nbdebug report | explain N | checks | version"""
        words = line.split()
        cmd = words[0] if words else "report"
        if cmd == "report":
            from ..session import last_report
            from .display import show_report
            show_report(self.shell, last_report())
        elif cmd == "explain":
            from .display import show_explain
            show_explain(self.shell, *_explain(words[1] if len(words) > 1 else ""))
        elif cmd == "checks":
            print(checks_table())
        elif cmd == "version":
            from .._version import __version__
            print(f"nbdebug {__version__}")
        else:
            raise UsageError(f"%nbdebug {cmd}: unknown command; use report, explain N, "
                             "checks or version")


def checks_table(width: int = 100) -> str:
    """``%nbdebug checks``: every registered check, aligned columns, whole descriptions
    (the first paragraph of each docstring) wrapped under their column."""
    import textwrap

    from ..checks import REGISTRY
    rows = [(c.id, str(c.point), c.phase, " ".join(c.doc.split("\n\n")[0].split()))
            for c in REGISTRY.values()]
    heads = ("check", "point", "phase")
    w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    indent = sum(w) + 6
    lines = [f"{heads[0]:<{w[0]}}  {heads[1]:<{w[1]}}  {heads[2]:<{w[2]}}  what it finds"]
    for cid, point, phase, doc in rows:
        lead = f"{cid:<{w[0]}}  {point:<{w[1]}}  {phase:<{w[2]}}  "
        lines += textwrap.wrap(doc, width, initial_indent=lead,
                               subsequent_indent=" " * indent) or [lead.rstrip()]
    return "\n".join(lines)


def plain_help(doc: str) -> str:
    """The magic's help as plain text: IPython's ``magic_arguments`` writes reST (a ``::``
    literal block, double back-quotes) that a notebook's help pager shows raw."""
    import textwrap
    doc = doc.replace("``", "")
    if doc.startswith("::"):
        usage, _, rest = doc[2:].lstrip("\n").partition("\n\n")
        usage = textwrap.dedent(usage).replace("%diagnose", "%%diagnose", 1)
        doc = "Usage: " + usage.strip().replace("\n", "\n       ") + "\n\n" + rest
    return doc


DiagnoseMagics.diagnose.__doc__ = plain_help(DiagnoseMagics.diagnose.__doc__ or "")


def _cell_number(shell: Any) -> int:
    """The In[n] number of the running cell: the frame of the cell that called the magic."""
    names = getattr(shell.compile, "_filename_map", {})
    frame: Any = sys._getframe(1)
    while frame is not None:
        number = names.get(frame.f_code.co_filename)
        if number is not None:
            return int(number)
        frame = frame.f_back
    return int(shell.execution_count)


def _explain(arg: str) -> tuple[Any, str, list[tuple[str, str]], str, str]:
    """(key, text, [(check id, doc)], title, explanation) of an article point."""
    from ..checks import REGISTRY
    from ..points import POINTS
    key: Any = int(arg) if arg.isdigit() else arg
    if key not in POINTS:
        raise UsageError(f"%nbdebug explain {arg}: give an article point 1-20 or 'stuck'")
    title, text = POINTS[key]
    checks = [c for c in REGISTRY.values() if c.point == key]
    lines = [f"Point {key}: {title}", f"  {text}"]
    lines += [f"  nbdebug checks ({c.id}): {c.doc}" for c in checks] or [
        "  nbdebug does not check this point yet."]
    return key, "\n".join(lines), [(c.id, c.doc) for c in checks], title, text
