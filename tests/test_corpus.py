"""The public corpus: real training cells run through the real ``%%diagnose``.

Each ``tests/cases/*.py`` is one notebook story. Header lines:

    # expect: 13=problem 8=warning   points (or keys such as stuck) and the status they must get
    # healthy                        no finding may be a warning or a problem
    # flags: --every 1               extra %%diagnose flags (optional)
    # notes: 14 16                   points that must carry an info finding (advice only)

Code above a ``# %% diagnose`` line runs as an ordinary cell first (the set-up cell of a
notebook); the code below it runs under ``%%diagnose``.
"""

from __future__ import annotations

import pathlib
import re

import pytest
import torch

from conftest import diagnose_cell, run_cell

CASES = sorted((pathlib.Path(__file__).parent / "cases").glob("*.py"))
MARK = "# %% diagnose"


def parse_case(path: pathlib.Path) -> dict:
    return parse_text(path.read_text(), path.name)


def parse_text(text: str, name: str = "<program>") -> dict:
    """The header and the two cells of a corpus program given as text."""
    expect: dict[str, str] = {}
    healthy = False
    flags = ""
    notes: list[str] = []
    for line in text.splitlines():
        if m := re.match(r"#\s*expect:\s*(.+)", line):
            for item in m.group(1).split():
                key, status = item.split("=")
                expect[key] = status
        elif re.match(r"#\s*healthy\b", line):
            healthy = True
        elif m := re.match(r"#\s*flags:\s*(.+)", line):
            flags = m.group(1).strip()
        elif m := re.match(r"#\s*notes:\s*(.+)", line):
            notes += m.group(1).split()
    setup, _, body = text.partition(MARK)
    if not body:
        setup, body = "", text
    assert healthy or expect, f"{name}: needs '# expect:' or '# healthy'"
    return {"setup": setup, "body": body, "expect": expect, "healthy": healthy,
            "flags": flags, "notes": notes}


@pytest.fixture(autouse=True)
def one_thread():
    """Each program is small: one thread is faster than several fighting for shared cores
    (and the results do not depend on it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_case(ip, path):
    check_case(ip, path)


def check_case(ip, path: pathlib.Path):
    """Run one program through %%diagnose and assert its header's expectations; the
    report."""
    case = parse_case(path)
    if case["setup"].strip():
        res = run_cell(ip, case["setup"])
        assert res.error_in_exec is None, res.error_in_exec
    result, report = diagnose_cell(ip, case["body"], flags=f"--quiet {case['flags']}")
    assert report is not None
    assert not report.errors, report.errors
    statuses = {str(item.point): item.status for item in report.checklist}
    for key, status in case["expect"].items():
        assert statuses.get(key) == status, (
            f"point {key}: expected {status}, got {statuses.get(key)}; findings: "
            f"{[(f.check, f.severity, f.message) for f in report.findings]}")
    for key in case["notes"]:
        assert any(str(f.point) == key and f.severity == "info" for f in report.findings), (
            f"point {key}: expected an info finding; got "
            f"{[(f.check, f.severity) for f in report.findings]}")
    if case["healthy"]:
        loud = [(f.check, f.severity, f.message) for f in report.findings
                if f.severity in ("problem", "warning")]
        assert not loud, f"false alarm on a healthy training: {loud}"
    assert not contradictions(report), contradictions(report)
    return report


def contradictions(report) -> list[str]:
    """Pairs of findings in one report that cannot both be true."""
    out = []
    too_large = report.finding("lr-too-large")
    if too_large is not None:
        for f in report.findings:
            if f.check == "stuck" and "lr-small" in f.evidence.get("causes", []):
                out.append("the lr is both too large (point 3) and far too small (stuck)")
            if "loss_drop" in f.evidence:
                out.append(f"{f.check} says the loss stalls while point 3 says it diverges")
    return out
