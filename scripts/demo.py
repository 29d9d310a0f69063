"""`make demo`: run a notebook headless through a real kernel and show its diagnosis.

Writes OUT/<name>.ipynb (executed), OUT/<name>.html (nbconvert) and prints the checklist
of every report the notebook saved under build/.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from nbdebug.report import Report
from nbdebug.ui.text import render_text

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebook", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "build")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(args.notebook, as_version=4)
    started = time.time()
    reports = sorted(ROOT.glob("build/*.json"))
    before = {p: p.stat().st_mtime for p in reports}
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    name = args.notebook.stem
    nbformat.write(nb, args.out / f"{name}.ipynb")
    body, _ = HTMLExporter().from_notebook_node(nb)
    (args.out / f"{name}.html").write_text(body, encoding="utf-8")
    print(f"executed {args.notebook} in {time.time() - started:.1f} s -> "
          f"{args.out / (name + '.ipynb')}, {args.out / (name + '.html')}")
    for path in sorted(ROOT.glob("build/*.json")):
        if path.stat().st_mtime <= before.get(path, 0) or path.stat().st_mtime < started:
            continue
        report = Report.from_dict(json.loads(path.read_text()))
        print(f"\n== {path.relative_to(ROOT)}")
        print(render_text(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
