# expect: 6=problem 7=problem
# Binary classification with BCEWithLogitsLoss on breast-cancer rows sorted by
# diagnosis, walked in order in hand-made batches: all negatives, then all positives.
import torch
from torch import nn
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
data = load_breast_cancer()
order = data.target.argsort(kind="stable")
X = torch.tensor(data.data[order], dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target[order], dtype=torch.float32)


class Logistic(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(30, 1)

    def forward(self, x):
        return self.linear(x).squeeze(1)


model = Logistic()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
loss_fn = nn.BCEWithLogitsLoss()
# %% diagnose
for i in range(0, len(y), 40):
    loss = loss_fn(model(X[i:i + 40]), y[i:i + 40])
    opt.zero_grad()
    loss.backward()
    opt.step()
