"""A real kernel (nbclient): the live dashboard is replaced by the static bundle, which
the saved notebook and nbconvert's HTML keep; ``%nbdebug report`` / ``explain`` as HTML."""

from __future__ import annotations

import pytest
from notebook_util import REPORT_MIME, WIDGET_MIME, display_outputs, execute, notebook

from nbdebug.report import Report

pytestmark = pytest.mark.slow

EVIL = "<img src=x onerror=alert(1)>"

SETUP = f"""
%load_ext nbdebug
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(512, 10)
y = (X.sum(1) > 0).long()

class Log(nn.Module):
    def forward(self, x):
        return torch.log(x)                  # planted bug: log(0) = -inf, then NaN

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 32)
        self.act = nn.ReLU()
        self.add_module({EVIL!r}, Log())     # a hostile module name
        self.fc2 = nn.Linear(32, 2)

    def forward(self, x):
        return self.fc2(getattr(self, {EVIL!r})(self.act(self.fc1(x))))

net = Net()
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
"""

TRAIN = """
%%diagnose
for epoch in range(3):
    for i in range(0, 512, 32):
        out = net(X[i:i + 32])
        loss = nn.functional.cross_entropy(out, y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


#: a longer healthy run: 1,500 steps, so that full timelines would be large
LONG = """
%%diagnose
torch.manual_seed(1)
model = nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 2))
adam = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(3):
    perm = torch.randperm(512)
    for i in range(0, 512, 1):
        idx = perm[i:i + 1]
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        adam.zero_grad()
        loss.backward()
        adam.step()
"""
#: the most one diagnosed cell may add to the saved notebook
MAX_CELL_BYTES = 150_000


@pytest.fixture(scope="module")
def ran():
    nb = notebook(SETUP, TRAIN,
                  TRAIN.replace("%%diagnose", "%%diagnose --keep-live"),
                  TRAIN.replace("opt.step()", "opt.step()\n        raise ValueError('boom')"),
                  "%nbdebug report", "%nbdebug explain 13", LONG,
                  "%%diagnose\nx = sum(range(10))\nprint('no training here', x)")
    return execute(nb, timeout=400)


def _bundle(cell):
    outs = [o for o in display_outputs(cell) if REPORT_MIME in o.data]
    assert len(outs) == 1, [list(o.data) for o in display_outputs(cell)]
    return outs[0].data


def test_the_live_widget_is_replaced_by_the_static_bundle(ran):
    cell = ran.cells[1]
    data = _bundle(cell)
    assert {"text/html", "text/plain", REPORT_MIME} == set(data)
    assert not any(WIDGET_MIME in o.data for o in display_outputs(cell))
    report = Report.from_dict(data[REPORT_MIME])
    assert report.status(13) == "problem"
    assert "No NaN / Inf" in data["text/html"] and 'data-point="13"' in data["text/html"]
    assert data["text/html"].count("data:image/png;base64,") == 1
    # (the overhead shown counts the final figure, drawn after the training: on this
    # short cell it can exceed the training's own time)
    assert report.run["status"] == "done" and report.run["overhead"] > 0


def test_user_strings_are_escaped_in_the_saved_html(ran):
    html = _bundle(ran.cells[1])["text/html"]
    assert EVIL not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_keep_live_keeps_the_widget_with_the_final_state(ran):
    cell = ran.cells[2]
    outs = display_outputs(cell)
    assert any(WIDGET_MIME in o.data for o in outs)
    assert not any(REPORT_MIME in o.data for o in outs)


def test_a_failing_cell_still_gets_the_report_and_its_error(ran):
    cell = ran.cells[3]
    report = Report.from_dict(_bundle(cell)[REPORT_MIME])
    assert report.run["status"] == "failed"
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "ValueError"


def test_nbdebug_report_and_explain_show_html(ran):
    again = _bundle(ran.cells[4])
    assert Report.from_dict(again[REPORT_MIME]).run["status"] == "failed"
    explain = display_outputs(ran.cells[5])
    assert len(explain) == 1 and "Point 13" in explain[0].data["text/html"]
    assert "nan-origin" in explain[0].data["text/html"]


def test_nbconvert_html_contains_the_checklist_offline(ran, tmp_path):
    from nbconvert import HTMLExporter
    body, _ = HTMLExporter().from_notebook_node(ran)
    assert "nbd-checklist" in body and "No NaN / Inf" in body
    assert body.count('class="nbd-item nbd-problem"') >= 2
    assert EVIL not in body


def _saved_bytes(cell) -> int:
    """What the cell's outputs add to the notebook file, as nbformat writes it."""
    import nbformat
    empty = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    full = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("", outputs=cell.outputs)])
    return len(nbformat.writes(full).encode()) - len(nbformat.writes(empty).encode())


def test_a_diagnosed_cell_adds_at_most_150_kb_and_no_warning(ran):
    import json
    import re
    for index in (1, 3, 6):                       # NaN run, failed run, 1,500-step run
        cell = ran.cells[index]
        size = _saved_bytes(cell)
        assert size <= MAX_CELL_BYTES, (index, size)
        text = json.dumps(cell.outputs)
        assert not re.search(r"\b\w*Warning\b", text), (index, text[:2000])
        assert text.count("iVBORw0KGgo") == 1      # the plots' PNG, stored once
    # the replaced dashboards leave no widget state behind (only --keep-live's view stays)
    state = ran.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json",
                                                {}).get("state", {})
    images = [m for m in state.values() if m.get("model_name") == "ImageModel" and
              any(b.get("data") for b in m.get("buffers", []))]
    assert len(images) <= 1, len(images)
    report = Report.from_dict(_bundle(ran.cells[6])[REPORT_MIME])
    assert report.run["steps"] == 1536 and report.status(13) == "ok"
    loss = report.timelines["loss"]
    assert loss["downsampled_from"] == 1536 and len(loss["steps"]) <= 121


def test_a_cell_that_trains_nothing_gets_one_line(ran):
    cell = ran.cells[7]
    outs = display_outputs(cell)
    assert len(outs) == 1 and REPORT_MIME not in outs[0].data
    assert "image/png" not in outs[0].data and "<img" not in outs[0].data["text/html"]
    assert outs[0].data["text/plain"].startswith("nbdebug: nothing to diagnose")
    assert "no training here 45" in "".join(o.get("text", "") for o in cell.outputs)
