# expect: stuck=problem
# An LSTM sequence classifier trained with lr=1e-7: the weights move a ten-millionth of
# their norm per step and the loss does not improve.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 10, 5)
y = (X[:, :, 0].sum(1) > 0).long()


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 24, batch_first=True)
        self.fc = nn.Linear(24, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


tagger = Tagger()
opt = torch.optim.Adam(tagger.parameters(), lr=1e-7)
# %% diagnose
for epoch in range(5):
    for i in range(0, 256, 32):
        opt.zero_grad()
        nn.functional.cross_entropy(tagger(X[i:i + 32]), y[i:i + 32]).backward()
        opt.step()
