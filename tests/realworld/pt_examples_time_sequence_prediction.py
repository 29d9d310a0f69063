# healthy
# source: pytorch/examples, time_sequence_prediction/train.py
# The official sine-wave predictor: two stacked LSTMCells of 51 units and a linear
# output, trained on shifted sine waves with MSELoss and the LBFGS optimizer (lr=0.8,
# a closure that recomputes the loss), with a test prediction under no_grad after every
# step. Offline by nature; fewer and shorter waves, 5 LBFGS iterations per step.
import numpy as np
import torch
from torch import nn

np.random.seed(2)
torch.manual_seed(0)
T, L, N = 20, 60, 12
x = np.empty((N, L), "int64")
x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
data = torch.from_numpy(np.sin(x / 1.0 / T).astype("float32"))
inp, target = data[3:, :-1], data[3:, 1:]
test_input, test_target = data[:3, :-1], data[:3, 1:]


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, x):
        outputs = []
        h_t = c_t = torch.zeros(x.size(0), 51)
        h_t2 = c_t2 = torch.zeros(x.size(0), 51)
        for x_t in x.split(1, dim=1):
            h_t, c_t = self.lstm1(x_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            outputs.append(self.linear(h_t2))
        return torch.cat(outputs, dim=1)


seq = Sequence()
criterion = nn.MSELoss()
optimizer = torch.optim.LBFGS(seq.parameters(), lr=0.8, max_iter=5)
# %% diagnose
for i in range(3):
    def closure():
        optimizer.zero_grad()
        loss = criterion(seq(inp), target)
        loss.backward()
        return loss
    optimizer.step(closure)
    with torch.no_grad():
        criterion(seq(test_input), test_target)
