"""A KeyboardInterrupt delivered by a real kernel mid-training: the cell stops, the report of
what was seen is there, and nothing of nbdebug is left in the kernel."""

from __future__ import annotations

import json
import time

import pytest
from jupyter_client.manager import start_new_kernel

SETUP = """
%load_ext nbdebug
import torch
from torch import nn
net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
X, y = torch.randn(64, 8), torch.randint(0, 2, (64,))
"""
LOOP = """%%diagnose --quiet
import time
while True:
    loss = nn.functional.cross_entropy(net(X), y)
    opt.zero_grad(); loss.backward(); opt.step()
    time.sleep(0.001)
"""
CHECK = """
import json, nbdebug, torch
from torch.nn.modules import module
from torch.optim import optimizer
r = nbdebug.last_report()
left = [n for n in ("_global_forward_hooks", "_global_forward_pre_hooks")
        if getattr(module, n)]
left += [n for n in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")
         if getattr(optimizer, n)]
left += ["backward"] if hasattr(torch.Tensor.backward, "__wrapped__") else []
print(json.dumps({"status": r.run["status"], "steps": r.run["steps"], "left": left}))
"""


def _run(kc, code, timeout=120):
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
    reply = kc.execute_interactive(code, output_hook=hook, timeout=timeout)
    return reply, "".join(out)


@pytest.mark.slow
def test_interrupt_mid_training_in_a_real_kernel():
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        reply, _ = _run(kc, SETUP)
        assert reply["content"]["status"] == "ok"
        msg_id = kc.execute(LOOP)
        time.sleep(4)                      # let it train for a while
        km.interrupt_kernel()
        deadline = time.time() + 60
        while True:
            msg = kc.get_shell_msg(timeout=max(1, deadline - time.time()))
            if msg["parent_header"].get("msg_id") == msg_id:
                break
        assert msg["content"]["status"] == "error"
        assert msg["content"]["ename"] == "KeyboardInterrupt"
        reply, out = _run(kc, CHECK)
        facts = json.loads(out.strip().splitlines()[-1])
        assert facts["status"] == "interrupted" and facts["steps"] > 10
        assert facts["left"] == []
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
