# expect: 9=problem
# source: https://stats.stackexchange.com/a/487195
# An RNN trained on long sequences takes a huge step when its gradient explodes and lands
# on a flat region of the loss, where it stays. The answer: track the gradient norms and
# clip them (gradient clipping), rather than only lowering the step size.
import torch
from torch import nn

torch.manual_seed(0)
seqs = torch.randn(256, 40, 4)
target = seqs[:, :, 0].sum(1, keepdim=True) / 10


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(4, 48, nonlinearity="relu", batch_first=True)
        self.head = nn.Linear(48, 1)
        with torch.no_grad():
            self.rnn.weight_hh_l0.copy_(torch.eye(48) + 0.01 * torch.randn(48, 48))

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


model = Regressor()
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
# %% diagnose
for epoch in range(3):
    for i in range(0, 256, 32):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(seqs[i:i + 32]), target[i:i + 32]).backward()
        optimizer.step()
