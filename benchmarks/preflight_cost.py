"""The cost of ``--preflight`` on the corpus models (``tests/cases``).

Each case runs through a real IPython shell under ``%%diagnose --preflight``; the report
says how long the cell took and how long the experiments took. The share is pre-flight's
seconds over the cell's. ``--findings`` also prints what pre-flight found per case.

    python benchmarks/preflight_cost.py [--findings] [--budget SECONDS] [name-substring ...]
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "cases"
MARK = "# %% diagnose"
#: extra flags (--budget SECONDS on the command line sets --preflight-budget)
FLAGS = ""


def run_case(shell, path: pathlib.Path) -> dict:
    import nbdebug
    text = path.read_text()
    setup, _, body = text.partition(MARK)
    if not body:
        setup, body = "", text
    shell.reset(new_session=False)
    if setup.strip():
        shell.run_cell(setup)
    t0 = time.perf_counter()
    shell.run_cell(f"%%diagnose --quiet --preflight {FLAGS}\n" + textwrap.dedent(body).strip("\n"))
    wall = time.perf_counter() - t0
    report = nbdebug.last_report()
    pf = report.run.get("preflight", {})
    return {"case": path.stem, "wall": wall, "preflight": pf.get("seconds", 0.0),
            "ran": pf.get("ran", []), "skipped": pf.get("skipped", {}),
            "findings": [(f.check, f.severity, f.step) for f in report.findings
                         if f.check.startswith("preflight")],
            "loud": [(f.check, f.severity) for f in report.findings
                     if f.severity in ("problem", "warning")],
            "errors": [e.get("error") for e in report.errors]}


def main(argv: list[str]) -> int:
    from IPython.core.interactiveshell import InteractiveShell
    global FLAGS
    show = "--findings" in argv
    if "--budget" in argv:
        FLAGS = f"--preflight-budget {argv[argv.index('--budget') + 1]}"
        argv = [a for i, a in enumerate(argv) if a != "--budget" and argv[i - 1] != "--budget"]
    wanted = [a for a in argv if not a.startswith("--")]
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbdebug")
    rows = []
    for path in sorted(CASES.glob("*.py")):
        if wanted and not any(w in path.stem for w in wanted):
            continue
        row = run_case(shell, path)
        rows.append(row)
        share = row["preflight"] / row["wall"] if row["wall"] else 0.0
        print(f"{row['case']:<40} cell {row['wall']:7.2f} s  pre-flight "
              f"{row['preflight']:6.2f} s  ({share:5.1%})  ran {len(row['ran'])}/5", flush=True)
        if show:
            print(f"    findings {row['findings']}  skipped {row['skipped']}")
            if row["errors"]:
                print(f"    ERRORS {row['errors']}")
    total = sum(r["wall"] for r in rows)
    pre = sum(r["preflight"] for r in rows)
    pres = sorted(r["preflight"] for r in rows)
    if rows:
        print(f"\n{len(rows)} cases: cells {total:.1f} s, pre-flight {pre:.1f} s "
              f"({pre / total:.1%} of the cells' time); per case median "
              f"{pres[len(pres) // 2]:.2f} s, max {pres[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
