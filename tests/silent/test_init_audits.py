"""Init audits: an init applied twice where the second undoes the first, and weights at
several times any standard init's scale, each with its fixed twin.

- GPT-2's scaled init of the residual projections (std 0.02 / sqrt(2 * n_layer)) lost to
  the generic ``_init_weights`` applied after it, so ``c_proj`` starts at 0.02, ~sqrt(2n)
  times the intended scale (public reports on a GPT-2 implementation: the scaled init of
  ``c_proj`` silently not in effect, and the same tensor re-initialised over and over by
  the nested ``apply``). The fixed twin applies the generic init first and the scaled
  one after it (nanoGPT's order), which is the design and stays silent; torch's own
  constructor inits (``reset_parameters``) never count.
- A hidden layer drawn at std 0.5 (about 4x what Kaiming gives its 128 inputs): too
  small a gap for the old ten-times rule, reported now, as advice while the run shows no
  harm; the fixed twin keeps torch's default init.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import diagnose_cell, run_cell
from nbdebug.capture.probes.inits import intended

MODEL = """
import math
import torch
from torch import nn
import torch.nn.functional as F
N_LAYER, D, V, T = 4, 32, 12, 8

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(D)
        self.fc = nn.Linear(D, 4 * D)
        self.c_proj = nn.Linear(4 * D, D)
        {in_block}

    def forward(self, x):
        return x + self.c_proj(F.gelu(self.fc(self.ln(x))))

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, D)
        self.blocks = nn.Sequential(*[Block() for _ in range(N_LAYER)])
        self.head = nn.Linear(D, V)
        self.apply(self._init_weights)
        {after_apply}

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx):
        return self.head(self.blocks(self.wte(idx)))
"""

SCALED = "nn.init.normal_({p}, mean=0.0, std=0.02 / math.sqrt(2 * N_LAYER))"
AFTER = ("for name, p in self.named_parameters():\n"
         "            if name.endswith('c_proj.weight'):\n"
         "                " + SCALED.format(p="p"))
BUGGY = MODEL.replace("{in_block}", SCALED.format(p="self.c_proj.weight")) \
    .replace("{after_apply}", "")
FIXED = MODEL.replace("{in_block}", "").replace("{after_apply}", AFTER)

# the model is built in the diagnosed cell: its init calls are what the audit sees
TRAIN = """
torch.manual_seed(0)
model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
text = torch.arange(400) % V                  # a sequence the model can learn
for step in range(40):
    i = (step * 37) % (len(text) - T - 8)
    idx = torch.stack([text[i + k:i + k + T + 1] for k in range(8)])
    logits = model(idx[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), idx[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def _report(ip, model):
    run_cell(ip, model)
    _, report = diagnose_cell(ip, TRAIN)
    assert not report.errors, report.errors
    return report


def test_a_scaled_init_lost_to_the_generic_init_applied_after_it_is_a_warning(ip):
    report = _report(ip, BUGGY)
    found = [f for f in report.findings if f.check == "init-overwritten"]
    assert len(found) == 1 and found[0].severity == "warning", report.findings
    f = found[0]
    names = [f"model.blocks.{i}.c_proj.weight" for i in range(4)]
    assert f.evidence["tensors"] == names and f.where == names[0]
    lost, final = f.evidence["lost"], f.evidence["final"]
    assert lost["fn"] == final["fn"] == "nn.init.normal_"
    assert "(__init__)" in lost["where"] and "(_init_weights)" in final["where"]
    assert lost["std"] == pytest.approx(0.02 / math.sqrt(8)) and final["std"] == 0.02
    assert f.evidence["lost_breadth"] == 4 and f.evidence["final_breadth"] == 9
    assert "2.8x the intended" in f.message
    # the weights really start at the generic scale
    c_proj = ip.user_ns["model"].blocks[0].c_proj.weight
    assert c_proj.shape == (32, 128)
    status = {str(i.point): i.status for i in report.checklist}
    assert status["17"] == "warning"


def test_the_fixed_twin_scales_after_the_generic_init_and_is_silent(ip):
    report = _report(ip, FIXED)
    assert not [f for f in report.findings if f.check in ("init-overwritten", "zero-init")]
    status = {str(i.point): i.status for i in report.checklist}
    assert status["17"] == "ok"


def test_the_init_wraps_are_gone_once_training_starts(ip):
    """Zero cost on the steps: torch.nn.init and Tensor.normal_ are torch's own again from
    the first training forward on."""
    originals = (nn.init.normal_, torch.Tensor.normal_, torch.Tensor.uniform_)
    run_cell(ip, FIXED)
    run_cell(ip, "import torch.nn.init as init_module\nseen_inside = []")
    _, report = diagnose_cell(ip, TRAIN.replace(
        "    opt.step()", "    opt.step()\n    seen_inside.append((init_module.normal_, "
                         "torch.Tensor.normal_, torch.Tensor.uniform_))"))
    seen = ip.user_ns["seen_inside"]
    assert len(seen) == 40 and all(s == originals for s in seen)
    assert (nn.init.normal_, torch.Tensor.normal_, torch.Tensor.uniform_) == originals


HIDDEN = """
import torch
from torch import nn
import torch.nn.functional as F
torch.manual_seed(0)
X = torch.randn(512, 16)
y = (X[:, :4].sum(1) > 0).long() + (X[:, 4:8].sum(1) > 0).long()
"""

WIDE = """
net = nn.Sequential(nn.Linear(16, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                    nn.Linear(128, 3))
{init}
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(4):
    for i in range(0, 512, 32):
        loss = F.cross_entropy(net(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
"""


def test_weights_at_several_times_any_standard_scale_are_named(ip):
    run_cell(ip, HIDDEN)
    _, report = diagnose_cell(ip, WIDE.replace("{init}", "nn.init.normal_(net[2].weight, "
                                                        "std=0.5)"))
    found = [f for f in report.findings if f.check == "zero-init"]
    assert [f.where for f in found] == ["net.2.weight"], found
    f = found[0]
    assert f.severity == "info" and "(Linear)" in f.message
    assert f.evidence["std"] / f.evidence["largest_standard_std"] >= 3
    assert f.evidence["std_times_sqrt_fan_in"] < 14.1        # below the old ten-times rule
    run_cell(ip, HIDDEN)
    _, report = diagnose_cell(ip, WIDE.replace("{init}", ""))
    assert not [f for f in report.findings if f.check == "zero-init"]


@pytest.mark.parametrize("call,shape", [
    ("normal_(t, 0.0, 0.3)", (64, 256)), ("uniform_(t, -0.2, 0.2)", (64, 256)),
    ("trunc_normal_(t, std=0.02)", (64, 256)), ("trunc_normal_(t, std=1.0)", (64, 256)),
    ("xavier_uniform_(t)", (64, 256)), ("xavier_normal_(t, gain=2.0)", (64, 32, 3, 3)),
    ("kaiming_uniform_(t, a=math.sqrt(5))", (64, 256)),
    ("kaiming_normal_(t, mode='fan_out', nonlinearity='relu')", (64, 32, 3, 3)),
    ("orthogonal_(t)", (64, 256)), ("orthogonal_(t, gain=1.5)", (256, 64)),
    ("sparse_(t, 0.5, std=0.1)", (256, 64))])
def test_the_std_an_init_draws_from_is_read_from_its_arguments(call, shape):
    """What the audit computes without reading the tensor matches what the init draws."""
    torch.manual_seed(0)
    t = torch.empty(shape)
    name, _, rest = call.partition("(")
    args = eval(f"(lambda t, *a, **k: (a, k))({rest}", {"math": math, "t": t})
    getattr(nn.init, name)(t, *args[0], **args[1])
    std, const = intended(f"nn.init.{name}", shape, *args)
    assert const is None and std == pytest.approx(t.std().item(), rel=0.05)


def test_constant_inits_and_tensor_methods():
    assert intended("nn.init.zeros_", (4, 4), (), {}) == (None, 0.0)
    assert intended("nn.init.constant_", (4, 4), (0.5,), {}) == (None, 0.5)
    assert intended("Tensor.normal_", (4, 4), (), {"mean": 0.0, "std": 0.02}) == (0.02, None)
    std, _ = intended("Tensor.uniform_", (4, 4), (-0.1, 0.1), {})
    assert std == pytest.approx(0.2 / math.sqrt(12))
    assert intended("nn.init.eye_", (4, 4), (), {}) == (None, None)
