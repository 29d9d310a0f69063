# healthy
# Distillation from a teacher trained just before, then frozen with requires_grad_(False):
# its parameters still hold the .grad of its own training. The student zeroes its
# gradients every step; the teacher's leftovers are not stale gradients of this training.
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
X = torch.randn(512, 8)
y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 1).long()
teacher = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
t_opt = torch.optim.Adam(teacher.parameters(), lr=1e-2)
for i in range(0, 512, 64):
    t_opt.zero_grad()
    F.cross_entropy(teacher(X[i:i + 64]), y[i:i + 64]).backward()
    t_opt.step()
teacher.eval().requires_grad_(False)
student = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
opt = torch.optim.Adam(student.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(5):
    perm = torch.randperm(512)
    for i in range(0, 512, 64):
        idx = perm[i:i + 64]
        with torch.no_grad():
            soft = F.softmax(teacher(X[idx]), 1)
        loss = F.kl_div(F.log_softmax(student(X[idx]), 1), soft, reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
