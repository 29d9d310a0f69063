# expect: 2=problem
# A custom module trained with Adam and coupled L2 weight_decay=0.05 on all
# parameters, hand-made batches from synthetic data.
import torch
from torch import nn

torch.manual_seed(1)
X = torch.randn(512, 12)
y = (X[:, :3].sum(1) > 0).long()


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(12, 32)
        self.norm = nn.LayerNorm(32)
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        return self.head(torch.relu(self.norm(self.hidden(x))))


model = Classifier()
adam = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.05)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(512)
    for i in range(0, 512, 64):
        idx = perm[i:i + 64]
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        adam.zero_grad()
        loss.backward()
        adam.step()
