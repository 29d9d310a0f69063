"""The shape of the package: small modules, no import cycle, layers that import downwards.

Read from the source with ``ast`` (nothing is imported): every import at module level or
inside a function counts, except those under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "nbdebug"
MAX_LINES = 400


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "labextension" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                for inner in ast.walk(sub):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")
                    up = up[:len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                while target and target not in modules:   # "nbdebug.x.y" attribute imports
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_anywhere_in_the_package():
    graph = import_graph()
    assert "nbdebug.capture.core" in graph and graph["nbdebug.capture.core"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_400_lines():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_probes_see_their_context_not_the_dispatcher_nor_each_other():
    """A probe module imports no other probe's module (shared helpers excepted: the base,
    and the plain functions named here) and never the dispatcher."""
    graph = import_graph()
    allowed = {"nbdebug.capture.probes.base", "nbdebug.capture.probes.inputs",
               "nbdebug.capture.probes.losses"}
    for name, deps in graph.items():
        if not name.startswith("nbdebug.capture.probes.") or name.endswith(".base"):
            continue
        assert "nbdebug.capture.core" not in deps, name
        assert not [d for d in deps if d.startswith("nbdebug.capture.probes")
                    and d not in allowed], name


def test_layers_import_downwards():
    """capture never imports ui; ui and checks never import torch or capture."""
    graph = import_graph()
    for name, deps in graph.items():
        if name.startswith("nbdebug.capture"):
            assert not [d for d in deps if d.startswith(("nbdebug.ui", "nbdebug.magics"))], name
        if name.startswith(("nbdebug.ui", "nbdebug.checks")):
            assert not [d for d in deps if d.startswith("nbdebug.capture")
                        or d.split(".")[0] == "torch"], name
