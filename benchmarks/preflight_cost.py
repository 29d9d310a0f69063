"""The cost of ``--preflight`` on the corpus models (``tests/cases``).

Each case runs through a real IPython shell under ``%%diagnose``, then under
``%%diagnose --preflight`` (default budget unless ``--budget``); the report says how long
the experiments took. "share" is pre-flight's seconds over the cell's with pre-flight;
"added" is the cell's extra time against the run without it. ``--findings`` also prints
what pre-flight found per case.

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


def run_case(shell, path: pathlib.Path, flags: str | None = None) -> dict:
    import nbdebug
    text = path.read_text()
    setup, _, body = text.partition(MARK)
    if not body:
        setup, body = "", text
    shell.reset(new_session=False)
    if setup.strip():
        shell.run_cell(setup)
    t0 = time.perf_counter()
    magic = f"--quiet --preflight {FLAGS}" if flags is None else flags
    shell.run_cell(f"%%diagnose {magic}\n" + textwrap.dedent(body).strip("\n"))
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
        base = run_case(shell, path, flags="--quiet")["wall"]
        row = run_case(shell, path)
        row["base"] = base
        rows.append(row)
        share = row["preflight"] / row["wall"] if row["wall"] else 0.0
        print(f"{row['case']:<40} without {base:6.2f} s  with {row['wall']:6.2f} s  "
              f"pre-flight {row['preflight']:5.2f} s  (share {share:5.1%}, added "
              f"{row['wall'] / base - 1:+6.0%})  ran {len(row['ran'])}/5", flush=True)
        if show:
            print(f"    findings {row['findings']}  skipped {row['skipped']}")
            if row["errors"]:
                print(f"    ERRORS {row['errors']}")
    total = sum(r["wall"] for r in rows)
    base = sum(r["base"] for r in rows)
    pre = sum(r["preflight"] for r in rows)
    pres = sorted(r["preflight"] for r in rows)
    shares = sorted(r["preflight"] / r["wall"] for r in rows if r["wall"])
    if rows:
        print(f"\n{len(rows)} cases: cells {base:.1f} s without, {total:.1f} s with pre-flight; "
              f"pre-flight {pre:.1f} s ({pre / total:.1%} of the cells' time); per case "
              f"median {pres[len(pres) // 2]:.2f} s (share {shares[len(shares) // 2]:.0%}), "
              f"max {pres[-1]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
