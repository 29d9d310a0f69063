# healthy
# expect: 5=not_applicable 2=ok 18=ok 17=ok
# An LSTM classifier over token ids (Embedding), AdamW with its default decay,
# gradient clipping, shuffled DataLoader.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
seqs = torch.randint(1, 40, (192, 15))
label = (seqs[:, :5] > 20).sum(1).gt(2).long()
loader = DataLoader(TensorDataset(seqs, label), batch_size=32, shuffle=True)


class LSTMClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.head = nn.Linear(32, 2)

    def forward(self, tokens):
        out, _ = self.lstm(self.emb(tokens))
        return self.head(out[:, -1])


lstm = LSTMClassifier()
opt = torch.optim.AdamW(lstm.parameters(), lr=2e-3)
# %% diagnose
for epoch in range(2):
    for tokens, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(lstm(tokens), yb).backward()
        nn.utils.clip_grad_norm_(lstm.parameters(), 1.0)
        opt.step()
