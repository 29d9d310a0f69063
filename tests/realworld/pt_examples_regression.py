# healthy
# source: pytorch/examples, regression/main.py
# The official polynomial regression: a random degree-4 polynomial, features
# [x, x^2, x^3, x^4], one nn.Linear(4, 1) fitted with smooth_l1_loss on batches of 32
# fresh random points, and a plain gradient step written by hand
# (param.add_(-0.1 * param.grad)) after zeroing the gradients with fc.zero_grad().
import torch
import torch.nn.functional as F

torch.manual_seed(1)
POLY_DEGREE = 4
W_target = torch.randn(POLY_DEGREE, 1) * 5
b_target = torch.randn(1) * 5


def make_features(x):
    x = x.unsqueeze(1)
    return torch.cat([x ** i for i in range(1, POLY_DEGREE + 1)], 1)


def get_batch(batch_size=32):
    x = make_features(torch.randn(batch_size))
    return x, x.mm(W_target) + b_target.item()


fc = torch.nn.Linear(W_target.size(0), 1)
# %% diagnose
for batch_idx in range(1, 400):
    batch_x, batch_y = get_batch()
    fc.zero_grad()
    output = F.smooth_l1_loss(fc(batch_x), batch_y)
    loss = output.item()
    output.backward()
    for param in fc.parameters():
        param.data.add_(-0.1 * param.grad)
    if loss < 1e-3:
        break
