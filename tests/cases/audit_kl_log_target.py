# expect: 20=problem
# KL between two sequence models' token distributions: the target is given as
# log-probabilities without log_target=True, and the loss goes negative.
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
tokens = torch.randint(0, 50, (64, 12))


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.rnn = nn.GRU(16, 32, batch_first=True)
        self.out = nn.Linear(32, 50)

    def forward(self, t):
        h, _ = self.rnn(self.emb(t))
        return self.out(h)


ref = TinyLM().eval()
lm = TinyLM()
opt = torch.optim.Adam(lm.parameters(), lr=1e-3)
# %% diagnose
for i in range(0, 64, 16):
    batch = tokens[i:i + 16]
    with torch.no_grad():
        ref_logp = F.log_softmax(ref(batch), dim=-1)
    loss = F.kl_div(F.log_softmax(lm(batch), dim=-1), ref_logp, reduction="batchmean")
    opt.zero_grad()
    loss.backward()
    opt.step()
