"""The public real-world corpus: training programs written from well-known public sources
(healthy) and from public bug reports (buggy), run through the real ``%%diagnose``.

Each ``tests/realworld/*.py`` uses the header of ``tests/cases`` (``# expect:``,
``# healthy``, ``# notes:``, ``# flags:``) plus:

    # source: <repository and file, tutorial, or the URL of the thread>   required
    # xfail: needs capture: <why>    fails today for a reason in the capture layer: the
                                     test is a strict xfail, so it flips when that lands

A healthy program must get no warning and no problem; a buggy one must get its points.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from test_corpus import check_case, one_thread, parse_case  # noqa: F401  (autouse fixture)

FOLDER = pathlib.Path(__file__).parent / "realworld"
PROGRAMS = sorted(FOLDER.glob("*.py"))


def _header(path: pathlib.Path, key: str) -> str | None:
    for line in path.read_text().splitlines():
        if m := re.match(rf"#\s*{key}:\s*(.+)", line):
            return m.group(1).strip()
        if not line.startswith("#"):
            break
    return None


def _param(path: pathlib.Path):
    reason = _header(path, "xfail")
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_param(p) for p in PROGRAMS])
def test_program(ip, path):
    check_case(ip, path)


def test_every_program_names_its_source_and_the_corpus_is_large_enough():
    healthy = [p for p in PROGRAMS if parse_case(p)["healthy"]]
    buggy = [p for p in PROGRAMS if parse_case(p)["expect"] and not parse_case(p)["healthy"]]
    assert len(healthy) >= 25 and len(buggy) >= 12, (len(healthy), len(buggy))
    for p in PROGRAMS:
        source = _header(p, "source")
        assert source, f"{p.name}: needs '# source:'"
        if p in buggy:
            assert source.startswith("https://"), f"{p.name}: cite the thread's URL"
        reason = _header(p, "xfail")
        assert reason is None or reason.startswith("needs capture:"), p.name
