"""Invariant 6 on a real training: every user-controlled name is text wherever it shows.

The model's variable, class and submodule names, the loader's and the optimizer's
variable names are all markup (a notebook can bind any string with ``globals()[...]``;
``type()`` and ``add_module`` take any class or attribute name without a dot). The
training, diagnosed by the real ``%%diagnose`` with the live dashboard and the sidebar
bridge, makes nbdebug name each of them in its findings (a NaN in the hostile submodule,
an unshuffled loader, vanilla SGD). Then: the static HTML report and the dashboard's
widgets (live checklist, final checklist, header) hold the names only as escaped text,
no element or attribute of theirs; the sidebar's messages carry them verbatim as data
(the sidebar writes them with textContent, held by test_frontend_hostile), never as
pre-rendered or half-escaped markup.
"""

from __future__ import annotations

import html.parser
import json

import pytest

from conftest import diagnose_cell, run_cell
from test_frontend_protocol import RecordingComm, bridge  # noqa: F401  (fixture)

EVIL = {
    "model": "<script>alert('model')</script>",
    "class": '<img src=x onerror="alert(`class`)">',
    "attr": '"><svg onload=alert(1)>',
    "loader": "<iframe src=javascript:alert(2)>",
    "optimizer": "'><b onmouseover=alert(3)>opt</b>",
}
SETUP = f"""
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
EVIL = {EVIL!r}
torch.manual_seed(0)
X = torch.randn(256, 10)
y = (X[:, 0] > 0).long()
order = torch.argsort(y)
X, y = X[order], y[order]                      # grouped by label, never shuffled

Log = type(EVIL["class"], (nn.Module,), {{"forward": lambda self, x: torch.log(x)}})

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.act = nn.ReLU()
        self.add_module(EVIL["attr"], Log())   # log of a ReLU output: -inf, then NaN
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(getattr(self, EVIL["attr"])(self.act(self.fc1(x))))

globals()[EVIL["model"]] = Net()
globals()[EVIL["loader"]] = DataLoader(TensorDataset(X, y), batch_size=16)
globals()[EVIL["optimizer"]] = torch.optim.SGD(globals()[EVIL["model"]].parameters(), lr=0.05)
"""
TRAIN = """
for epoch in range(4):
    for xb, yb in globals()[EVIL["loader"]]:
        loss = nn.functional.cross_entropy(globals()[EVIL["model"]](xb), yb)
        globals()[EVIL["optimizer"]].zero_grad()
        loss.backward()
        globals()[EVIL["optimizer"]].step()
"""
#: every element nbdebug's HTML uses; a user string must never add one
OUR_TAGS = {"style", "div", "b", "code", "span", "details", "summary", "table", "tr", "td",
            "img", "p", "ul", "li"}


class _Page(html.parser.HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _only_text(name: str, page: str, expect: list[str]) -> None:
    """``page`` has only nbdebug's own elements and attributes; ``expect`` shows as text."""
    parsed = _Page(page)
    tags = {t for t, _ in parsed.tags}
    assert tags <= OUR_TAGS, f"{name}: {tags - OUR_TAGS}"
    for tag, attrs in parsed.tags:
        assert not any(k.startswith("on") for k in attrs), (name, tag, attrs)
        assert not any("javascript:" in (v or "") for v in attrs.values()), (name, attrs)
        if tag == "img":
            assert set(attrs) == {"alt", "src"}, (name, attrs)
            assert attrs["src"].startswith("data:image/png;base64,"), name
    for raw in ("<script", "<svg", "<iframe", "<img src=x", "<b onmouseover"):
        assert raw not in page, (name, raw)
    text = "".join(parsed.text)
    for evil in expect:
        assert evil in text, f"{name}: {evil!r} is not shown as text"


def test_hostile_names_are_text_in_the_html_report_widgets_and_sidebar(
        ip, bridge, notebook_frontend):  # noqa: F811
    from nbdebug.ui import html as ui_html
    from nbdebug.ui import plots
    run_cell(ip, SETUP)
    result, report = diagnose_cell(ip, TRAIN, flags="--keep-live")
    assert result.success and report.run["steps"] == 64
    # nbdebug really names them all (else the test proves nothing)
    nan, shuffle, sgd = (report.finding(c) for c in ("nan-origin", "shuffle", "sgd-momentum"))
    assert EVIL["attr"] in nan.where and EVIL["class"] in nan.where
    assert nan.where.startswith(EVIL["model"])
    assert shuffle.where == EVIL["loader"] and sgd.where == EVIL["optimizer"]
    assert report.run["models"][0]["name"] == EVIL["model"]
    named = [EVIL["model"], EVIL["class"], EVIL["attr"], EVIL["loader"], EVIL["optimizer"]]

    png = plots.render_png(report.timelines, report.findings)
    _only_text("static report", ui_html.render_html(report, png), named)
    bundle = ui_html.bundle(report, png)
    _only_text("bundle text/html", bundle["text/html"], named)
    dash = notebook_frontend.LAST_DASHBOARD[0]
    assert dash.redraws >= 1
    _only_text("dashboard live checklist", dash._checklist_html,
               [EVIL["loader"], EVIL["model"], EVIL["attr"], EVIL["class"]])
    _only_text("dashboard checklist", dash.checklist.value, named)
    _only_text("dashboard header", dash.header.value, [])

    msgs = [m for _, m in bridge.comms[0].sent]
    findings = [m for m in msgs if m["type"] == "finding"]
    wheres = {m["where"] for m in findings}
    assert {nan.where, EVIL["loader"], EVIL["optimizer"]} <= wheres
    assert any(EVIL["attr"] in m["message"] for m in findings)
    text = json.dumps(msgs)
    assert "&lt;" not in text and "&quot;" not in text and "&#x27;" not in text


def test_the_html_check_catches_unescaped_names():
    """The checker itself: a name pasted into markup is caught, an escaped one is not."""
    evil = EVIL["class"]
    with pytest.raises(AssertionError):
        _only_text("raw", f"<div>{evil}</div>", [evil])
    with pytest.raises(AssertionError):
        _only_text("attribute", f'<div title="{EVIL["attr"]}">x</div>', [])
    import html as std_html
    _only_text("escaped", f"<div>{std_html.escape(evil)}</div>", [evil])


def test_names_the_plot_font_lacks_draw_without_a_warning_in_the_cell(
        ip, notebook_frontend):
    """CJK, emoji and right-to-left names (common in real notebooks): the plots draw them
    (as boxes where the font has no glyph) without putting a warning per glyph under the
    user's cell at every redraw; the HTML report shows them as they are."""
    import warnings
    names = ["编码器", "🔥层", "\u202etxet"]
    run_cell(ip, f"""
        import torch
        from torch import nn
        torch.manual_seed(0)
        X = torch.randn(64, 8); y = (X[:, 0] > 0).long()
        net = nn.Sequential()
        for i, name in enumerate({names!r}):
            net.add_module(name, nn.Linear(8 if i == 0 else 16, 16 if i < 2 else 2))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    """)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result, report = diagnose_cell(ip, """
            for step in range(60):
                loss = nn.functional.cross_entropy(net(X), y)
                opt.zero_grad(); loss.backward(); opt.step()
        """, flags="--keep-live")
    assert result.success and report.errors == []
    dash = notebook_frontend.LAST_DASHBOARD[0]
    assert dash.redraws >= 1 and dash.image.value[:4] == b"\x89PNG"
    assert [str(w.message) for w in seen] == []
    assert all(f"net.{n}.weight" in report.timelines["grad_norm"]["columns"] for n in names)
