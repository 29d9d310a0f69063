# expect: 4=problem
# Pure functional code, no nn.Module: weight tensors, torch.softmax on the scores,
# then F.cross_entropy (double softmax), updated by torch.optim.SGD with momentum.
import torch
import torch.nn.functional as F

torch.manual_seed(0)
X = torch.randn(300, 5)
y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 0.5).long()
W1 = (torch.randn(5, 16) * 0.4).requires_grad_()
b1 = torch.zeros(16, requires_grad=True)
W2 = (torch.randn(16, 3) * 0.25).requires_grad_()
b2 = torch.zeros(3, requires_grad=True)
sgd = torch.optim.SGD([W1, b1, W2, b2], lr=0.1, momentum=0.9)
# %% diagnose
for step in range(20):
    idx = torch.randint(0, 300, (32,))
    probs = torch.softmax(torch.relu(X[idx] @ W1 + b1) @ W2 + b2, dim=1)
    loss = F.cross_entropy(probs, y[idx])
    sgd.zero_grad()
    loss.backward()
    sgd.step()
