# expect: 3=problem
# A GRU classifier on hand-made batches with SGD lr=20: the loss oscillates with no progress.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 12, 4)
y = (X[:, :, 0].mean(1) > 0).long()


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 32, batch_first=True)
        self.head = nn.Linear(32, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


clf = Classifier()
opt = torch.optim.SGD(clf.parameters(), lr=20.0, momentum=0.9)
# %% diagnose
for epoch in range(3):
    for i in range(0, 256, 32):
        loss = nn.functional.cross_entropy(clf(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
