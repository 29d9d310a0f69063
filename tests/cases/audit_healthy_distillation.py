# healthy
# expect: 20=ok 4=ok optimizer-params=ok
# Knowledge distillation: F.kl_div(log_softmax(student / T), softmax(teacher / T),
# reduction='batchmean') * T^2 plus cross-entropy; the teacher runs under no_grad.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
dg = load_digits()
X = torch.tensor(dg.data, dtype=torch.float32)
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
y = torch.tensor(dg.target)
train_loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
teacher = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
student = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
T = 2.0
# %% diagnose
for epoch in range(1):
    for xb, yb in train_loader:
        with torch.no_grad():
            t_logits = teacher(xb)
        s_logits = student(xb)
        kd = F.kl_div(F.log_softmax(s_logits / T, dim=1), F.softmax(t_logits / T, dim=1),
                      reduction="batchmean") * T * T
        loss = 0.5 * kd + 0.5 * F.cross_entropy(s_logits, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
