"""Front ends without the sidebar (nbclient here, like classic views or VS Code): a real
kernel runs %load_ext nbdebug and %%diagnose; nothing errors and the report still prints."""

from __future__ import annotations

import os

import nbformat
import pytest

from notebook_util import output_text

pytestmark = pytest.mark.slow


def test_a_front_end_without_the_extension_sees_no_error():
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (
        "%load_ext nbdebug",
        "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
        "X = torch.randn(64, 4); y = (X[:, 0] > 0).long()\n"
        "net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))\n"
        "opt = torch.optim.Adam(net.parameters(), lr=1e-3)",
        "%%diagnose\nfor i in range(0, 64, 8):\n    opt.zero_grad()\n"
        "    nn.functional.cross_entropy(net(X[i:i + 8]), y[i:i + 8]).backward()\n"
        "    opt.step()",
        "import nbdebug\nprint(nbdebug.last_report().run['status'], "
        "len(nbdebug.last_report().errors))",
    )]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    for cell in nb.cells:
        for out in cell.outputs:
            assert out.output_type != "error", out
            if out.get("name") == "stderr":
                assert "nbdebug" not in out.text and "Traceback" not in out.text, out.text
    report_text = output_text(nb.cells[2])      # the static report's text/plain
    assert report_text.startswith("nbdebug: 8 steps") and " ok: 1, 2, 3" in report_text
    assert "".join(o.get("text", "") for o in nb.cells[3].outputs).split() == ["done", "0"]
