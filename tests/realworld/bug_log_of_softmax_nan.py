# expect: 13=problem
# source: https://github.com/skorch-dev/skorch/issues/481
# "torch.log(y_pred) in NeuralNetClassifier.get_loss may cause NaN": the loss takes
# torch.log of softmax outputs; as the model grows confident some probabilities reach 0,
# the log gives -inf and the training turns to NaN. The fix: compute log_softmax (or
# cross_entropy on the logits) instead of log(softmax), or add an epsilon.
import torch
from torch import nn
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.data, dtype=torch.float32) / 16.0
y = torch.tensor(digits.target)
model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
# %% diagnose
for epoch in range(4):
    for i in range(0, len(X), 64):
        probs = torch.softmax(model(X[i:i + 64]) * 20, dim=1)
        loss = nn.functional.nll_loss(torch.log(probs), y[i:i + 64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
