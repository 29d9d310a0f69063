"""notebooks/article_tour.ipynb: one section per article point (and "stuck"), each with a
buggy training that nbdebug flags and the fixed training that comes out clean.

The slow test executes the notebook through a real kernel and reads the reports every
diagnosed cell saved under build/tour/ (NN-bug.json, NN-fix.json; 21 is "stuck").
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
import time

import nbformat
import pytest

from nbdebug.points import POINTS

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "article_tour.ipynb"

#: point -> (the buggy report's checklist status for it, the check that must say so);
#: "info" means an info finding of that check with the item left "ok" (advice only)
EXPECT: dict[int | str, tuple[str, str]] = {
    1: ("problem", "huge-logits"),
    2: ("problem", "bias-decay"),
    3: ("problem", "lr-too-large"),
    4: ("problem", "logits-activation"),
    5: ("warning", "input-range"),
    6: ("problem", "shuffle"),
    7: ("problem", "single-label"),
    8: ("info", "sgd-momentum"),
    9: ("problem", "exploding-gradients"),
    10: ("problem", "label-mismatch"),
    11: ("warning", "over-confidence"),
    12: ("info", "bn-batch"),
    13: ("problem", "nan-origin"),
    14: ("info", "bn-placement"),
    15: ("info", "dropout-conv"),
    16: ("info", "batch-size"),
    17: ("problem", "zero-init"),
    18: ("info", "missing-bias"),
    19: ("warning", "val-test-shift"),
    20: ("problem", "kl-div"),
    "stuck": ("problem", "stuck"),
}


def _number(key: int | str) -> int:
    return 21 if key == "stuck" else int(key)


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_article_tour", ROOT / "scripts" / "make_article_tour.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return module


def test_every_point_has_a_section_and_the_notebook_is_committed_clean():
    assert set(EXPECT) == set(POINTS), "one section per article point, plus stuck"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") or c.get("execution_count") for c in nb.cells
                   if c.cell_type == "code"), "notebooks are committed without outputs"
    headings = [c.source.splitlines()[0] for c in nb.cells
                if c.cell_type == "markdown" and c.source.startswith("## ")]
    gen = _generator()
    for key in POINTS:
        assert gen.heading(key) in headings, f"no section for {key}"
        assert POINTS[key][0] in gen.heading(key)
    sources = "\n".join(c.source for c in nb.cells)
    for key in POINTS:
        for kind in ("bug", "fix"):
            assert f"%%diagnose --save build/tour/{_number(key):02d}-{kind}.json" in sources
    # the committed notebook is what scripts/make_article_tour.py writes
    assert [(c.cell_type, c.source) for c in nb.cells] == [
        ("markdown" if kind == "md" else "code", src) for kind, src in gen.CELLS]


@pytest.mark.slow
def test_each_buggy_cell_is_flagged_and_each_fixed_cell_is_clean(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    folder = tmp_path / "build" / "tour"
    failures = []
    for key, (status, check) in EXPECT.items():
        n = _number(key)
        bug = json.loads((folder / f"{n:02d}-bug.json").read_text())
        fix = json.loads((folder / f"{n:02d}-fix.json").read_text())
        for report in (bug, fix):
            assert report["run"]["status"] == "done" and not report["errors"], (
                key, report["run"]["status"], report["errors"])
        states = {c["point"]: c["status"] for c in bug["checklist"]}
        hits = [f for f in bug["findings"] if f["point"] == key and f["check"] == check]
        if status == "info":
            ok = states[key] == "ok" and any(f["severity"] == "info" for f in hits)
        else:
            ok = states[key] == status and any(f["severity"] == status for f in hits)
        if not ok:
            failures.append(f"point {key}: the buggy cell got {states[key]} "
                            f"({[(f['check'], f['severity']) for f in bug['findings']]}), "
                            f"expected {status} from {check}")
        loud = [(f["check"], f["severity"], f["message"]) for f in fix["findings"]
                if f["severity"] in ("problem", "warning")]
        if loud:
            failures.append(f"point {key}: false alarm on the fixed cell: {loud}")
        fixed_state = {c["point"]: c["status"] for c in fix["checklist"]}[key]
        if fixed_state != "ok":
            failures.append(f"point {key}: the fixed cell's item is {fixed_state}, not ok")
    assert not failures, "\n".join(failures)

    # the advice-only points: the fixed cells show the other choice
    bn = json.loads((folder / "14-bug.json").read_text())
    bn_fixed = json.loads((folder / "14-fix.json").read_text())
    placement = [f["evidence"]["layers"][0]["placement"] for r in (bn, bn_fixed)
                 for f in r["findings"] if f["check"] == "bn-placement"]
    assert placement == ["after the activation", "before the activation"]
    assert not [f for f in json.loads((folder / "16-fix.json").read_text())["findings"]
                if f["check"] == "batch-size"]

    # point 13 names the origin: the module, and the operation found by the replay
    nan = next(f for f in json.loads((folder / "13-bug.json").read_text())["findings"]
               if f["check"] == "nan-origin")
    assert nan["step"] == 0 and nan["where"] == "model.0 (Standardize)"
    assert nan["evidence"]["phase"] == "forward"
    assert nan["evidence"]["replay"]["op"] == "div" and "division by 0" in nan["message"]

    # point 10 and 19 read the held-out loaders the cells evaluated
    mismatch = next(f for f in json.loads((folder / "10-bug.json").read_text())["findings"]
                    if f["check"] == "label-mismatch")
    assert mismatch["where"] == "val_dl" and mismatch["evidence"]["train_accuracy"] > 0.9
    shift = next(f for f in json.loads((folder / "19-bug.json").read_text())["findings"]
                 if f["check"] == "val-test-shift")
    assert shift["where"] == "test_dl" and set(shift["evidence"]["accuracy"]) == {
        "val_dl", "test_dl"}

    # "stuck" names the cause of the article's closing question
    stuck = next(f for f in json.loads((folder / "21-bug.json").read_text())["findings"]
                 if f["check"] == "stuck")
    assert stuck["evidence"]["causes"][0] == "dead-relu"

    # pre-flight flags the shuffled labels and the 30x lr at step 0; the fix is silent
    pf_bug = json.loads((folder / "pf-bug.json").read_text())
    pf_fix = json.loads((folder / "pf-fix.json").read_text())
    found = {f["check"]: f for f in pf_bug["findings"]}
    for check, point in (("preflight-labels", 10), ("preflight-lr-too-high", 3)):
        assert found[check]["severity"] == "problem" and found[check]["step"] == 0, check
        assert {c["point"]: c["status"] for c in pf_bug["checklist"]}[point] == "problem"
    assert not [f for f in pf_fix["findings"] if f["severity"] in ("problem", "warning")]
    assert pf_fix["run"]["preflight"]["ran"] and not pf_bug["errors"]

    # the tour stays short: about one minute on one CPU core
    assert seconds < 480, f"the tour took {seconds:.0f} s"
