# expect: stuck=problem
# The loss is computed with scikit-learn on numpy arrays and wrapped back into a tensor:
# backward() runs, but no gradient reaches the model, and nothing is learned.
import torch
from sklearn.metrics import log_loss
from torch import nn

torch.manual_seed(0)
X = torch.randn(320, 6)
y = (X[:, 0] + X[:, 1] > 0).long()
net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
# %% diagnose
for epoch in range(5):
    for i in range(0, 320, 32):
        probs = torch.softmax(net(X[i:i + 32]), 1).detach().numpy()
        loss = torch.tensor(log_loss(y[i:i + 32].numpy(), probs, labels=[0, 1]),
                            requires_grad=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
