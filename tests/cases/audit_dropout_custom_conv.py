# expect: 15=ok
# notes: 15
# A custom 1-D conv text-like model: nn.Dropout(0.4) after conv + pooling in forward.
# The run shows no harm from it, so the point stays ok with an info note.
import torch
from torch import nn

torch.manual_seed(0)
seqs = torch.randn(160, 4, 20)
label = (seqs[:, 0, :10].sum(1) > 0).long()


class ConvText(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 16, 5)
        self.pool = nn.MaxPool1d(2)
        self.drop = nn.Dropout(0.4)
        self.head = nn.Linear(16, 2)

    def forward(self, x):
        h = self.drop(self.pool(torch.relu(self.conv(x))))
        return self.head(h.mean(-1))


model = ConvText()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(2):
    perm = torch.randperm(160)
    for i in range(0, 160, 32):
        b = perm[i:i + 32]
        loss = nn.functional.cross_entropy(model(seqs[b]), label[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
