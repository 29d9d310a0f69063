# expect: 9=problem 13=problem
# A vanilla ReLU RNN with identity recurrent weights on 40-step sequences, no clipping:
# the gradient norm jumps by three orders of magnitude and the weights become NaN.
import torch
from torch import nn

torch.manual_seed(0)
X = torch.randn(256, 40, 3)
y = X[:, :, 0].sum(1, keepdim=True) / 10


class Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 32, nonlinearity="relu", batch_first=True)
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


seq = Seq()
with torch.no_grad():
    seq.rnn.weight_hh_l0.copy_(torch.eye(32) + 0.01 * torch.randn(32, 32))
opt = torch.optim.SGD(seq.parameters(), lr=1e-3, momentum=0.9)
# %% diagnose
for epoch in range(3):
    for i in range(0, 256, 32):
        loss = nn.functional.mse_loss(seq(X[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
