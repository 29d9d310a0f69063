"""Renderers without a kernel: golden text and HTML of a fixed report, plots, escaping.

Regenerate the golden files after an intended change of the output with
``NBDEBUG_UPDATE_GOLDEN=1 pytest tests/test_ui_render.py`` and review the diff.
"""

from __future__ import annotations

import html.parser
import math
import os
from pathlib import Path

import pytest

from nbdebug.points import ARTICLE_KEYS
from nbdebug.points import title as point_title
from nbdebug.report import ChecklistItem, Finding, Report
from nbdebug.ui import html as ui_html
from nbdebug.ui import plots
from nbdebug.ui.text import render_text

GOLDEN = Path(__file__).parent / "golden"
EVIL = "<img src=x onerror=alert(1)>"


def fixed_report() -> Report:
    """A report with a problem, a warning, every status, and hostile user strings."""
    findings = [
        Finding(check="nan-origin", point=13, severity="problem",
                title="NaN first produced in the forward pass",
                message=f"The output of {EVIL}.fc1 became NaN at step 17 while its inputs "
                        "were finite.",
                fix="Add an eps inside the log: torch.log(x + 1e-8).",
                where=f"{EVIL}.fc1 (Linear)", evidence={"step": 17, "kind": "nan",
                                                         "last_finite_output": "net.0 & <b>"},
                step=17),
        Finding(check="vanilla-sgd", point=8, severity="warning", title="Plain SGD",
                message="SGD without momentum: 'optimizer' group 0 has momentum=0.",
                fix="Use momentum=0.9 or Adam.", where="optimizer group 0",
                evidence={"momentum": 0.0, "lr": 0.1}, step=None),
    ]
    statuses = {13: "problem", 8: "warning", 12: "not_applicable", 11: "not_checked"}
    checklist = [ChecklistItem(point=k, title=point_title(k), status=statuses.get(k, "ok"),
                               reason="no held-out pass was seen" if k == 11 else None)
                 for k in ARTICLE_KEYS]
    steps = list(range(40))
    timelines = {
        "loss": {"steps": steps, "values": [2.3 / (1 + s / 10) for s in steps[:17]]
                 + ["nan"] * 23},
        "train_acc": {"steps": steps, "values": [min(1.0, s / 30) for s in steps]},
        "grad_norm": {"steps": steps, "columns": [f"{EVIL}.fc1.weight", "net.fc2.weight"],
                      "values": [[1.0 / (s + 1), 10 ** (-s / 10)] for s in steps]},
        "update_ratio": {"steps": steps[::10], "columns": ["a", "b"],
                         "values": [[1e-3, 2e-3]] * 4},
        "lr/0": {"steps": steps[::10], "values": [[0.1]] * 4},
        f"act/{EVIL}.fc1": {"steps": steps[::10],
                            "columns": ["mean", "std", "min", "max", "absmax", "zero_frac",
                                        "nonfinite"],
                            "values": [[0.1, 1.0, -2, 2, 2, 0.5, 0]] * 4},
        "eval/val_loader": {"steps": [20, 39], "values": [{"acc": 0.5, "loss": 1.0},
                                                          {"acc": 0.6, "loss": 0.9}]},
    }
    return Report(findings=findings, checklist=checklist, timelines=timelines,
                  run={"status": "failed", "steps": 40, "epochs": 2, "seconds": 3.25,
                       "exception": f"ValueError: bad {EVIL}"},
                  notes=[f"loader {EVIL} has no __len__"])


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("NBDEBUG_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with NBDEBUG_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


def test_text_matches_golden():
    _golden("report.txt", render_text(fixed_report()) + "\n")


def test_html_matches_golden():
    _golden("report.html", ui_html.render_html(fixed_report()) + "\n")


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_every_user_string_is_escaped_in_html():
    report = fixed_report()
    png = plots.render_png(report.timelines, report.findings)
    pages = [ui_html.render_html(report, png), ui_html.render_checklist(report),
             ui_html.render_header("running", 3, 1, 2.0, 0.05),
             ui_html.render_explain(EVIL, EVIL, EVIL, [(EVIL, EVIL)])]
    for page in pages:
        assert "<img src=x" not in page and "onerror=alert" not in page.replace(
            "onerror=alert(1)&gt;", "")
        parser = _Tags()
        parser.feed(page)
        imgs = [a for t, a in parser.tags if t == "img"]
        assert all(set(a) <= {"alt", "src"} for a in imgs), imgs   # only our plot image
        assert all(a["src"].startswith("data:image/png;base64,") for a in imgs)
        assert not any(any(k.startswith("on") for k in a) for _, a in parser.tags)
    # the names are still there for the reader, as text
    parser = _Tags()
    parser.feed(pages[0])
    assert any(EVIL in chunk for chunk in parser.text)


def test_checklist_html_puts_problems_and_warnings_first_and_folds_the_rest():
    report = fixed_report()
    parser = _Tags()
    parser.feed(ui_html.render_checklist(report))
    rows = [a for t, a in parser.tags if t == "details" and "data-point" in a]
    points = [a["data-point"] for a in rows]
    flagged_then_ok = ["13", "8"] + [str(k) for k in ARTICLE_KEYS if k not in (8, 11, 12, 13)]
    assert points == flagged_then_ok + ["11", "12"]      # every point, once
    opened = [a["data-point"] for a in rows if "open" in a]
    assert opened == ["13", "8"]
    folds = [a["class"] for t, a in parser.tags if t == "details" and "data-point" not in a]
    assert folds == ["nbd-fold nbd-fold-ok", "nbd-fold nbd-fold-rest"]
    assert not any("open" in a for t, a in parser.tags if t == "details" and
                   "nbd-fold" in a.get("class", ""))
    text = "".join(parser.text)
    assert "17 ok: 1, 2" in text and "1 not checked, 1 not applicable: 11, 12" in text
    assert "Add an eps inside the log" in text and "cannot be negative" in text
    assert "no held-out pass was seen" in text      # the reason, inside its fold
    assert "Evidence: step 17 · kind nan" in text   # evidence in words, not JSON


def test_text_report_folds_ok_items_into_one_line():
    text = render_text(fixed_report())
    lines = text.splitlines()
    assert lines[1].lstrip().startswith("✗ 13")
    assert sum("ok" == ln.split()[-1] for ln in lines if ln.strip()) == 0   # no ok rows
    assert any(ln.startswith("  ✓ 17 ok: 1, 2, 3") for ln in lines)


def test_bundle_stores_the_plots_once_and_a_downsampled_report():
    report = fixed_report()
    steps = list(range(5000))
    report.timelines["loss"] = {"steps": steps, "values": [1.0] * 4000 + ["nan"] * 1000}
    png = plots.render_png(report.timelines, report.findings)
    data = ui_html.bundle(report, png)
    assert set(data) == {"text/plain", "text/html", "application/vnd.nbdebug.report+json"}
    assert data["text/html"].count("data:image/png;base64,") == 1
    embedded = data["application/vnd.nbdebug.report+json"]
    loss = embedded["timelines"]["loss"]
    assert len(loss["steps"]) <= ui_html.EMBEDDED_POINTS + 1
    assert loss["downsampled_from"] == 5000 and 4000 in loss["steps"]   # where it broke
    assert loss["steps"][0] == 0 and loss["steps"][-1] == 4999
    assert Report.from_dict(embedded).status(13) == "problem"
    assert data["text/plain"].startswith("nbdebug: 40 steps")
    assert len(report.to_dict()["timelines"]["loss"]["steps"]) == 5000   # full one unchanged


def test_a_cell_that_trained_nothing_gets_one_line():
    report = Report(run={"status": "done", "steps": 0},
                    notes=["nothing to diagnose: the cell ran no forward pass"])
    data = ui_html.bundle(report, None)
    assert set(data) == {"text/plain", "text/html"}
    assert data["text/plain"] == "nbdebug: nothing to diagnose: the cell ran no forward pass."
    assert "<img" not in data["text/html"] and "nbd-checklist" not in data["text/html"]


def test_png_is_an_image_and_changes_with_the_data():
    report = fixed_report()
    a = plots.render_png(report.timelines, report.findings)
    assert a[:8] == b"\x89PNG\r\n\x1a\n" and len(a) > 10_000
    b = plots.render_png({}, [])
    assert b[:8] == b"\x89PNG\r\n\x1a\n" and a != b


@pytest.mark.parametrize("name", ["$x^2$ and $", "_hidden", "a" * 200, "\\frac",
                                  "two\nlines\tand\rmore", "\x00\x1b[31mred", "lone \ud800 half"])
def test_plots_draw_awkward_names_as_plain_text(name):
    tl = {"grad_norm": {"steps": [0, 1], "columns": [name], "values": [[1.0], [math.nan]]},
          f"act/{name}": {"steps": [0], "columns": ["mean", "std", "zero_frac"],
                          "values": [[0.0, 1.0, 0.2]]},
          "loss": {"steps": [0, 1], "values": [1.0, 0.5]},
          f"eval/{name}": {"steps": [1], "values": [{"loss": 0.7, "acc": 0.5}]}}
    assert plots.render_png(tl)[:4] == b"\x89PNG"


def test_smoothing_skips_non_finite_values():
    import numpy as np
    out = plots.smooth(np.array([1.0, math.nan, 1.0, 3.0]))
    assert out[0] == 1.0 and math.isnan(out[1]) and out[2] == 1.0 and 1.0 < out[3] < 3.0


def test_the_ui_layer_never_imports_torch():
    import subprocess
    import sys
    code = ("import sys, nbdebug.ui.dashboard, nbdebug.ui.html, nbdebug.ui.plots, "
            "nbdebug.ui.text; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def _spiky_loss(n=1710, spike_at=800):
    import random
    rng = random.Random(0)
    loss = [2.0 / (1 + s / 100) + rng.random() * 0.05 for s in range(n)]
    loss[spike_at] = 1e33
    return loss


def test_a_spike_is_marked_and_does_not_stretch_the_loss_axis():
    import numpy as np

    from nbdebug.ui import axes
    values = np.array(_spiky_loss())
    assert axes.scale_for(values) == "log"          # spans far more than 100x
    low, high = axes.robust_limits(values, "log")
    assert high < 10 and low > 0.05                  # the bulk of the curve, not 1e33
    # a curve spanning less than 100x keeps a linear axis and its whole range
    calm = np.linspace(2.0, 0.5, 300)
    assert axes.scale_for(calm) == "linear"
    low, high = axes.robust_limits(calm, "linear")
    assert low < 0.5 and high > 2.0


def test_a_fixed_learning_rate_is_a_header_fact_and_a_schedule_a_panel():
    steps = list(range(0, 400, 100))
    fixed = {"lr/0": {"steps": steps, "values": [[0.05]] * 4}}
    assert plots.constant_facts(fixed) == "lr 0.05 (fixed)"
    assert "lr" not in plots.panels(fixed)
    decay = {"lr/0": {"steps": steps, "values": [[0.1 * 0.5 ** i] for i in range(4)]}}
    assert plots.constant_facts(decay) == "" and "lr" in plots.panels(decay)
    assert "lr 0.1 (fixed)" in ui_html.render_html(fixed_report())   # in the report's head


def _pixels(png):
    import io

    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_zero_gradients_are_black_in_the_heatmap_not_blank():
    steps = list(range(50))

    def heatmap(zero_value):
        tl = {"grad_norm": {"steps": steps, "columns": ["a.weight", "b.weight"],
                            "values": [[zero_value if s > 20 else 1.0, 0.5] for s in steps]}}
        img = _pixels(plots.render_png(tl))
        return int((img.sum(axis=2) == 0).sum()), int((img.min(axis=2) == 255).sum())
    black_zero, white_zero = heatmap(0.0)
    black_small, white_small = heatmap(1e-3)
    assert black_zero > 5000 > black_small           # a block of black where the zeros are
    assert white_zero <= white_small                  # and no extra blank area


def test_the_plots_are_readable_at_notebook_width_and_small():
    report = fixed_report()
    report.timelines["loss"] = {"steps": list(range(1710)), "values": _spiky_loss()}
    png = plots.render_png(report.timelines, report.findings)
    img = _pixels(png)
    assert img.shape[1] == int(plots.WIDTH * plots.DPI) == 960     # not scaled down
    assert plots.DPI * 9 / 72 >= 11.5               # 9 pt text is at least 11.5 px
    assert len(png) < 60_000, len(png)


def test_a_long_line_is_decimated_keeping_its_spikes_and_gaps():
    import numpy as np
    x = np.arange(5000, dtype=float)
    y = np.ones(5000)
    y[1234], y[4000:] = 1e6, np.nan
    dx, dy = plots.decimate(x, y, points=400)
    assert len(dx) <= 420 and 1e6 in dy and 1234.0 in dx     # the spike survives
    assert np.isnan(dy[-1]) and np.isfinite(dy[0])              # and the gap at the end


def _decimate_bucket_by_bucket(x, y, points):
    """The plain definition: each bucket's lowest and highest finite value in step order,
    two NaN points for a bucket with none."""
    import numpy as np
    edges = np.linspace(0, len(x), points // 2 + 1).astype(int)
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        part = y[a:b]
        finite = np.isfinite(part)
        if not finite.any():
            xs += [x[a], x[b - 1]]
            ys += [np.nan, np.nan]
            continue
        lo = int(np.argmin(np.where(finite, part, np.inf)))
        hi = int(np.argmax(np.where(finite, part, -np.inf)))
        for i in sorted({lo, hi}):
            xs.append(x[a + i])
            ys.append(part[i])
    return np.asarray(xs), np.asarray(ys)


def test_decimation_keeps_each_buckets_extremes_in_order_as_the_plain_definition():
    import numpy as np
    rng = np.random.default_rng(1)
    for trial in range(120):
        n = int(rng.integers(30, 4000))
        points = int(rng.choice([8, 50, 400]))
        y = rng.normal(size=n)
        if trial % 3 == 0:
            y[rng.random(n) < 0.3] = np.nan
        if trial % 4 == 0:
            y[: n // 2] = np.nan              # whole buckets without a finite value
        if trial % 5 == 0:
            y = np.round(y)                   # ties: the first of equal values
        if trial % 7 == 0:
            y[rng.random(n) < 0.05] = np.inf
        x = np.arange(n, dtype=float) * 2
        dx, dy = plots.decimate(x, y, points)
        if n <= points:
            assert dx is x and dy is y
            continue
        rx, ry = _decimate_bucket_by_bucket(x, y, points)
        assert np.array_equal(dx, rx), trial
        assert np.array_equal(dy, ry, equal_nan=True), trial


def test_log_axis_labels_are_plain_text_powers_of_ten():
    from nbdebug.ui.axes import power_label
    assert power_label(1e-3) == "10\u207b\u00b3"
    assert power_label(100.0) == "10\u00b2" and power_label(1.0) == "10\u2070"
    assert power_label(-1e4) == "\u221210\u2074"
    assert power_label(0.0) == "0" and power_label(0.5) == "0.5"
    assert "$" not in power_label(1e-12)          # no mathtext to parse


@pytest.mark.parametrize("low", [1e-3, 1e-1, 0.5])
def test_the_gradient_colour_bar_labels_are_distinct_and_never_minus_zero(low):
    import numpy as np

    from nbdebug.ui import panels
    from nbdebug.ui.canvas import Canvas
    from nbdebug.ui.frame import Axes
    steps = list(range(0, 400, 10))
    values = [[float(v), float(v) / 2] for v in np.geomspace(1.0, low, len(steps))]
    ax = Axes((60, 30, 420, 250))
    panels.plot_grad_heatmap(ax, {"grad_norm": {"steps": steps, "values": values,
                                                "columns": ["a", "b"]}}, [])
    ax.draw(Canvas(480, 290))
    labels = ax.colorbar_ticks
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    assert not any(t.lstrip("\u2212-") in ("0", "0.0") and t[0] in "\u2212-" for t in labels)


def test_axis_ticks_are_round_values_inside_the_limits_with_distinct_labels():
    import numpy as np

    from nbdebug.ui.ticks import log_ticks, nice_ticks, number
    rng = np.random.default_rng(3)
    for _ in range(300):
        low = float(rng.normal() * 10.0 ** rng.integers(-4, 5))
        high = low + float(10.0 ** rng.uniform(-5, 5))
        bins = int(rng.integers(2, 9))
        ticks, step = nice_ticks(low, high, bins)
        assert 1 <= len(ticks) <= bins + 1, (low, high, bins, ticks)
        assert ticks.min() >= low - step * 1e-6 and ticks.max() <= high + step * 1e-6
        labels = [number(v, step) for v in ticks]
        assert len(set(labels)) == len(labels), (low, high, labels)
        assert not any(t.startswith("\u2212") and float(t[1:].replace("\u2212", "-")) == 0
                       for t in labels)
    assert [number(v, 0.2) for v in nice_ticks(-0.02, 1.02, 6)[0]] == [
        "0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert log_ticks(1e-6, 2.0) == [1e-6, 1e-4, 1e-2, 1.0]       # six decades: every other
    assert log_ticks(0.3, 2.0) == [0.5, 1.0, 2.0]                 # one decade: 1-2-5


def test_a_heatmap_column_is_drawn_at_its_own_step():
    """Sampled steps are not evenly spaced (dense first, then one every few hundred): each
    column sits at its step, so a gradient that vanished at step 320 shows there (evenly
    spaced, the twelfth of fifteen columns would sit near step 770)."""
    steps = [0, 1, 2, 3, 4, 5, 10, 20, 40, 80, 160, 320, 640, 900, 1000]
    tl = {"grad_norm": {"steps": steps, "columns": ["w"],
                        "values": [[0.0 if s == 320 else 1.0 / (s + 1)] for s in steps]}}
    img = _pixels(plots.render_png(tl, only=["grad_norm"]))
    left, right = 124.8, 124.8 + 333.2 * 0.94   # the panel's columns (the colour bar's right)
    row = img[120, int(left) + 2:int(right) - 2]           # a row through the heatmap
    black = (row.sum(axis=1) == 0).nonzero()[0] + int(left) + 2
    assert black.size
    at = (black.mean() - left) / (right - left) * 1001 - 0.5       # (x from -0.5 to 1000.5)
    assert 240 < at < 480, at                 # half way to 160 .. half way to 640


def test_a_legend_of_two_rows_above_the_first_panels_is_given_room():
    steps = list(range(100))
    tl = {"loss": {"steps": steps, "values": [1.0 / (s + 1) if s != 50 else 1e30
                                              for s in steps[:90]] + ["nan"] * 10}}
    for name in ("a", "b"):
        tl[f"eval/{name}"] = {"steps": [20, 60], "values": [{"loss": 0.5}, {"loss": 0.3}]}
    img = _pixels(plots.render_png(tl))
    plain = _pixels(plots.render_png({"loss": {"steps": steps, "values": [1.0] * 100}}))
    assert img.shape[0] > plain.shape[0]           # six entries: two rows, the image taller
    assert (img[:2].min(axis=2) >= 250).all()      # and nothing drawn at its very top
