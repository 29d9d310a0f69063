# expect: 17=problem
# source: https://community.deeplearning.ai/t/week-1-programming-assignment-initialization-exercise-1-initialize-parameters-zeros/121049
# Initialising every weight of a network to zero: every unit of a layer computes the same
# thing and gets the same gradient, so the symmetry is never broken and the network
# learns no more than one unit per layer could. The answer: initialise randomly
# (He/Xavier); only biases may start at zero.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import make_circles

torch.manual_seed(0)
X, y = make_circles(n_samples=600, noise=0.05, factor=0.5, random_state=1)
X, y = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
loader = DataLoader(TensorDataset(X, y), batch_size=64, shuffle=True)
model = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 1))
for m in model:
    if isinstance(m, nn.Linear):
        nn.init.zeros_(m.weight)
        nn.init.zeros_(m.bias)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(10):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(model(xb).squeeze(1), yb).backward()
        optimizer.step()
