# expect: 6=problem
# source: https://stackoverflow.com/questions/61215675/data-shuffling-for-image-classification
# The answer's example: the iris data set comes sorted by label (50 of class 0, then 50
# of class 1, then 50 of class 2); trained without shuffling, every stretch of batches
# holds one class. Shuffle the training data every epoch.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_iris

torch.manual_seed(0)
X, y = load_iris(return_X_y=True)
X = torch.tensor(X, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
loader = DataLoader(TensorDataset(X, torch.tensor(y)), batch_size=10)
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
# %% diagnose
for epoch in range(5):
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
