"""Count the findings per check and severity over corpus folders, through real %%diagnose.

    python scripts/verdict_counts.py tests/cases tests/realworld [--json counts.json]
    python scripts/verdict_counts.py --compare before.json after.json

Each program runs as the corpus tests run it (set-up cell, then the ``# %% diagnose``
part under ``%%diagnose --quiet``) in one real IPython shell. The table has one row per
check and folder: problems / warnings / info. ``--compare`` prints two saved counts side
by side (before -> after), the table of a severity-policy change.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections import defaultdict

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SEVERITIES = ("problem", "warning", "info")


def run_folder(shell, folder: pathlib.Path) -> dict[str, list[list[str]]]:
    """{program name: [[check, severity], ...]} for every program of ``folder``."""
    from conftest import diagnose_cell, run_cell
    from test_corpus import parse_case

    out: dict[str, list[list[str]]] = {}
    for path in sorted(folder.glob("*.py")):
        case = parse_case(path)
        shell.reset(new_session=False)
        if case["setup"].strip():
            run_cell(shell, case["setup"])
        _, report = diagnose_cell(shell, case["body"], flags=f"--quiet {case['flags']}")
        out[path.stem] = [[f.check, f.severity] for f in report.findings] if report else []
        if report is not None and report.errors:
            out[path.stem].append(["<internal-error>", "problem"])
    return out


def tally(programs: dict[str, list[list[str]]]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(SEVERITIES, 0))
    for findings in programs.values():
        for check_id, severity in findings:
            table[check_id][severity] += 1
    return {k: table[k] for k in sorted(table)}


def _cell(c: dict[str, int] | None) -> str:
    c = c or dict.fromkeys(SEVERITIES, 0)
    return "/".join(str(c[s]) for s in SEVERITIES)


def compare(before: dict, after: dict) -> str:
    lines = ["| check | folder | before p/w/i | after p/w/i |", "|---|---|---|---|"]
    for folder in sorted(set(before) | set(after)):
        b, a = tally(before.get(folder, {})), tally(after.get(folder, {}))
        for check_id in sorted(set(b) | set(a)):
            lines.append(f"| {check_id} | {folder} | {_cell(b.get(check_id))} | "
                         f"{_cell(a.get(check_id))} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="*", type=pathlib.Path)
    ap.add_argument("--json", type=pathlib.Path, help="save the findings per program")
    ap.add_argument("--compare", nargs=2, type=pathlib.Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        print(compare(before, after))
        return 0
    if not args.folders:
        ap.error("name at least one folder (or --compare BEFORE AFTER)")
    import torch
    from IPython.core.interactiveshell import InteractiveShell

    torch.set_num_threads(1)             # small programs: one thread beats several that fight
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdebug")
    saved = {}
    for folder in args.folders:
        t0 = time.perf_counter()
        saved[folder.name] = programs = run_folder(shell, folder)
        print(f"## {folder} ({len(programs)} programs, {time.perf_counter() - t0:.0f} s)")
        for check_id, c in tally(programs).items():
            print(f"{check_id:<22} problems {c['problem']:>3}  warnings {c['warning']:>3}  "
                  f"info {c['info']:>3}")
    if args.json:
        args.json.write_text(json.dumps(saved, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
