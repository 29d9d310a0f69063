# healthy
# An LSTM with gradient clipping (clip_grad_norm_) and Adam on hand-made sequence batches.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(384, 20, 4)
y = (X[:, :10, 0].sum(1) > X[:, 10:, 1].sum(1)).long()


class Reader(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 32, batch_first=True)
        self.fc = nn.Linear(32, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


reader = Reader()
opt = torch.optim.Adam(reader.parameters(), lr=3e-3)
# %% diagnose
for epoch in range(5):
    for i in range(0, 384, 32):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(reader(X[i:i + 32]), y[i:i + 32])
        loss.backward()
        nn.utils.clip_grad_norm_(reader.parameters(), max_norm=1.0)
        opt.step()
