# expect: 20=problem
# Distillation with nn.KLDivLoss(reduction='batchmean') fed the student's softmax
# probabilities instead of log-probabilities.
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
X = torch.randn(320, 10)
teacher = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
student = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4))
kl = nn.KLDivLoss(reduction="batchmean")
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
# %% diagnose
for i in range(0, 320, 32):
    xb = X[i:i + 32]
    with torch.no_grad():
        soft_targets = F.softmax(teacher(xb), dim=1)
    loss = kl(F.softmax(student(xb), dim=1), soft_targets)
    opt.zero_grad()
    loss.backward()
    opt.step()
