"""Nothing that comes from the front end is evaluated, imported or unpickled.

Hostile control messages (Python source, pickles as bytes and base64, huge payloads,
nesting bombs) go through the Bridge the way the sidebar's comm delivers them, also in
the middle of a real training: none of them runs, the malformed ones are rejected and
logged, the training is not stopped. A static scan holds the rule for the code itself:
the sidebar's side of nbdebug (``nbdebug/frontend`` and every nbdebug module it
imports) calls no eval/exec/compile/__import__, no pickle/marshal/yaml/dill/shelve
loader, no torch.load; in the whole package, the only such calls are the two that run
the user's own code (the ``%%diagnose`` cell and the ``python -m nbdebug`` script).
"""

from __future__ import annotations

import ast
import base64
import logging
import marshal
import os
import pathlib
import pickle
import re

import pytest

from nbdebug.frontend import protocol as P
from test_frontend_protocol import RecordingComm, bridge  # noqa: F401  (fixture)

from conftest import diagnose_cell, run_cell
from test_structure import import_graph

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nbdebug"
#: set by any payload that runs; must stay empty
SENTINEL: list[str] = []


class _Touch:
    """Unpickling this creates the sentinel file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _Append:
    """Unpickling this appends to SENTINEL."""

    def __reduce__(self):
        return (exec, (f"import {__name__} as m; m.SENTINEL.append('pickle')",))


def _depth_bomb(depth: int, as_list: bool) -> object:
    root: object = [] if as_list else {"type": "stop"}
    node = root
    for _ in range(depth):
        child: object = [] if as_list else {}
        if as_list:
            node.append(child)          # type: ignore[union-attr]
        else:
            node["x"] = child           # type: ignore[index]
        node = child
    return root


def _hostile(path: str) -> list[tuple[str, object, str | None]]:
    """(name, message data, why it is rejected, or None where its shape is valid)."""
    code = f"__import__('os').system('touch {path}')"
    grab = f"__import__('{__name__}').SENTINEL.append('eval')"
    touch_pickle = pickle.dumps(_Touch(path))
    append_pickle = pickle.dumps(_Append())
    code_obj = marshal.dumps(compile(grab, "<x>", "exec"))
    b64 = base64.b64encode(touch_pickle).decode("ascii")
    return [
        ("source as the message", code, "not an object"),
        ("source as the type", {"type": code}, "unknown type"),
        ("source as the run", {"type": "stop", "run": grab}, "non-integer run"),
        ("source as the version", {"type": "hello", "version": code}, "integer version"),
        ("source as a comm id", {"type": "hello", "version": P.PROTOCOL_VERSION,
                                 "data_comm": 7, "control_comm": code}, "non-string"),
        ("pickle as the message", touch_pickle, "not JSON"),
        ("pickle as the run", {"type": "stop", "run": append_pickle}, "not JSON"),
        ("marshal code as the message", code_obj, "not JSON"),
        ("pickle as base64 in an unknown type", {"type": b64}, "unknown type"),
        ("a live object", {"type": "stop", "run": _Append()}, "not JSON"),
        ("huge string", {"type": "stop", "pad": "x" * 50_000_000}, "oversized"),
        ("huge list", {"type": "stop", "pad": [grab] * 5_000_000}, "oversized"),
        ("deep dict", _depth_bomb(100_000, as_list=False), "nested deeper"),
        ("deep list", _depth_bomb(100_000, as_list=True), "nested deeper"),
        ("NaN run", {"type": "stop", "run": float("nan")}, "non-integer run"),
        # well-shaped: acted on as data, the strings only compared, never run
        ("source in a hello's comm ids", {"type": "hello", "version": P.PROTOCOL_VERSION,
                                          "data_comm": code, "control_comm": grab}, None),
        ("pickle as base64 in an extra field", {"type": "stop", "run": 10**9,
                                                "payload": b64}, None),
    ]


def _nothing_ran(path: pathlib.Path) -> None:
    assert not path.exists(), "a front-end payload ran os.system"
    assert SENTINEL == [], f"a front-end payload ran: {SENTINEL}"


@pytest.mark.parametrize("how", ["on the comm", "in the comm's open message"])
def test_hostile_control_messages_are_never_run_and_are_rejected_and_logged(
        bridge, caplog, tmp_path, how):   # noqa: F811
    sentinel = tmp_path / "pwned"
    for name, data, why in _hostile(str(sentinel)):
        control = RecordingComm()
        ignored = len(bridge.ignored)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="nbdebug.frontend"):
            if how == "on the comm":
                bridge.control_opened(control, {"content": {"data": None}})
                control.deliver(data)    # raises here if anything escaped the handler
            else:
                bridge.control_opened(control, {"content": {"data": data}})
        _nothing_ran(sentinel)
        if why is None:
            assert len(bridge.ignored) == ignored, name
            continue
        assert len(bridge.ignored) == ignored + 1, name
        assert why in bridge.ignored[-1], (name, bridge.ignored[-1])
        assert why in caplog.text, name
        assert len(caplog.text) < 2000, name         # the log line is not the payload
        assert control.sent == [], name
    # the well-shaped hello opened a data comm: its hello carries the id as plain text
    hello = [c for c in bridge.comms if c.open_data.get("for") is not None][-1].open_data
    assert hello["type"] == "hello" and "SENTINEL" in hello["for"]


def test_binary_buffers_on_a_control_message_are_never_read(bridge, tmp_path):  # noqa: F811
    sentinel = tmp_path / "pwned"
    control = RecordingComm()
    bridge.control_opened(control, {"content": {"data": None}})
    control._on_msg({"content": {"data": {"type": "hello", "version": 0}},
                     "buffers": [pickle.dumps(_Touch(str(sentinel))),
                                 memoryview(pickle.dumps(_Append()))]})
    _nothing_ran(sentinel)
    assert "protocol" in bridge.ignored[-1]


def test_hostile_messages_during_a_training_neither_run_nor_stop_it(
        ip, bridge, tmp_path):   # noqa: F811
    sentinel = tmp_path / "pwned"
    control = RecordingComm()
    bridge.control_opened(control, {"content": {"data": None}})
    ip.user_ns["_send_all"] = lambda: [control.deliver(d)
                                       for _, d, _ in _hostile(str(sentinel))]
    run_cell(ip, """
        import torch
        from torch import nn
        torch.manual_seed(0)
        X = torch.randn(64, 8); y = (X[:, 0] > 0).long()
        model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    """)
    result, report = diagnose_cell(ip, """
        for step in range(6):
            if step == 2:
                _send_all()
            loss = nn.functional.cross_entropy(model(X), y)
            opt.zero_grad(); loss.backward(); opt.step()
    """)
    assert result.success and report.run["status"] == "done" and report.run["steps"] == 6
    _nothing_ran(sentinel)
    assert report.errors == []


# -- the static rule -------------------------------------------------------------------

#: calls that run or load code or objects from data
FORBIDDEN_NAMES = {"eval", "exec", "compile", "__import__", "execfile"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "dill", "shelve",
                     "cloudpickle", "joblib", "jsonpickle", "yaml", "runpy", "code",
                     "codeop"}
FORBIDDEN_ATTRS = {("torch", "load"), ("numpy", "load"), ("np", "load"),
                   ("importlib", "import_module"), ("ast", "literal_eval"),
                   ("os", "system"), ("subprocess", "run"), ("subprocess", "Popen"),
                   ("subprocess", "call"), ("subprocess", "check_output")}
#: the user's own code, run on purpose: (file, function, call)
ALLOWED = {("nbdebug/magics/diagnose.py", "diagnose", "exec"),
           ("nbdebug/magics/diagnose.py", "diagnose", "eval"),
           ("nbdebug/cli.py", "_load", "compile"),
           ("nbdebug/cli.py", "_run", "exec")}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _dangerous_calls(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """(file, enclosing function, what) for every forbidden call or import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(ROOT).as_posix()
    found: list[tuple[str, str, str]] = []
    # names bound to forbidden things: "import yaml as y", "from pickle import loads as l"
    alias: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                alias[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                alias[a.asname or a.name] = f"{node.module}.{a.name}"

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef)) else func
            if isinstance(child, ast.Call):
                name = _dotted(child.func)
                first, _, rest = name.partition(".")
                if first in alias:
                    name = alias[first] + (f".{rest}" if rest else "")
                head, _, attr = name.rpartition(".")
                if name in FORBIDDEN_NAMES or (name.startswith("builtins.")
                                               and attr in FORBIDDEN_NAMES):
                    found.append((rel, func, attr or name))
                elif head.split(".")[0] in FORBIDDEN_MODULES:
                    found.append((rel, func, name))
                elif (head.split(".")[-1], attr) in FORBIDDEN_ATTRS:
                    found.append((rel, func, name))
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.split(".")[0] in FORBIDDEN_MODULES:
                        found.append((rel, func, f"import {a.name}"))
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module.split(".")[0] in FORBIDDEN_MODULES or any(
                        (child.module.split(".")[-1], a.name) in FORBIDDEN_ATTRS
                        or a.name in FORBIDDEN_NAMES for a in child.names):
                    found.append((rel, func, f"from {child.module} import ..."))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def _frontend_closure() -> set[str]:
    """nbdebug.frontend and every nbdebug module it imports, transitively. The package's
    entry point ``nbdebug/__init__`` is read for what the front end takes from it (the
    version) and not followed into its extension hooks, which the front end never calls."""
    graph = import_graph()          # (every import, at module level or in a function)
    seen: set[str] = set()
    todo = [m for m in graph if m == "nbdebug.frontend" or m.startswith("nbdebug.frontend.")]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name == "nbdebug":
            todo.append("nbdebug._version")
            continue
        todo.extend(graph.get(name, set()) - seen)
    return seen


def test_the_frontend_and_what_it_calls_never_evaluate_or_unpickle():
    closure = _frontend_closure()
    # the scan follows the real paths: the bridge reaches the session and the report
    assert {"nbdebug.frontend.bridge", "nbdebug.frontend.protocol", "nbdebug.session",
            "nbdebug.report"} <= closure
    modules = _modules()
    found = [hit for name in sorted(closure) for hit in _dangerous_calls(modules[name])]
    assert found == [], found
    allowed_files = {f for f, _, _ in ALLOWED}
    assert not {modules[m].relative_to(ROOT).as_posix() for m in closure} & allowed_files


def test_the_only_code_nbdebug_runs_is_the_users_own():
    found = {hit for path in _modules().values() for hit in _dangerous_calls(path)}
    assert found == ALLOWED, sorted(found ^ ALLOWED)


def test_the_scan_sees_what_it_forbids(tmp_path):
    """The scanner itself: each forbidden form is found (so the two tests above can fail)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pickle\nfrom marshal import loads\nimport yaml as y\n"
        "def f(msg):\n    eval(msg)\n    exec(msg)\n    pickle.loads(msg)\n"
        "    y.load(msg)\n    torch.load(msg)\n    __import__(msg)\n"
        "    importlib.import_module(msg)\n    builtins.eval(msg)\n    loads(msg)\n",
        encoding="utf-8")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        found = _dangerous_calls(sample)
    finally:
        ROOT = saved
    what = {w for _, _, w in found}
    assert what == {"import pickle", "from marshal import ...", "import yaml", "eval", "exec",
                    "pickle.loads", "yaml.load", "torch.load", "__import__",
                    "importlib.import_module", "marshal.loads"}
    assert ("sample.py", "f", "eval") in found and len(found) == 12


def test_the_sidebar_never_renders_kernel_text_as_html():
    """Kernel strings reach the DOM as text only (textContent), never as markup or code."""
    sinks = ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
             "new Function", "dangerouslySetInnerHTML", "srcdoc", "setAttribute('on",
             'setAttribute("on', ".href =", "javascript:")
    src = ROOT / "labextension" / "src"
    files = sorted(src.glob("*.ts"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        code = _strip_ts_comments(text)
        hits = [s for s in sinks if s in code]
        assert hits == [], f"{path.name}: {hits}"
    assert "textContent" in (src / "panel.ts").read_text(encoding="utf-8")


def _strip_ts_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"(?m)^\s*//.*$", "", text)
