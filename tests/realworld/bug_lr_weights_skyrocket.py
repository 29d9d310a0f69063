# expect: 3=problem
# source: https://datascience.stackexchange.com/questions/15962/why-is-learning-rate-causing-my-neural-networks-weights-to-skyrocket
# "Why is learning rate causing my neural network's weights to skyrocket?": with one
# learning rate the loss grows exponentially within an epoch, from thousands to a
# trillion and then NaN; ten times lower, everything works. The answer: the step
# overshoots the minimum by more than it started from, so every step makes it worse.
import torch
from torch import nn
from sklearn.datasets import load_diabetes

torch.manual_seed(0)
X, y = load_diabetes(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(y, dtype=torch.float32).unsqueeze(1)
y = (y - y.mean()) / y.std()
model = nn.Linear(10, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.35)
# %% diagnose
for step in range(60):
    optimizer.zero_grad()
    nn.functional.mse_loss(model(X), y).backward()
    optimizer.step()
