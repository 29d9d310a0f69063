# expect: 4=problem
# source: https://discuss.pytorch.org/t/two-output-nodes-for-binary-classification/58703/2
# A binary classifier with two output nodes and a final softmax layer trained with
# nn.CrossEntropyLoss. The answer: CrossEntropyLoss expects logits, so remove the softmax
# layer and pass the last layer's output to the criterion.
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_breast_cancer

torch.manual_seed(0)
data = load_breast_cancer()
X = torch.tensor(data.data, dtype=torch.float32)
X = (X - X.mean(0)) / X.std(0)
y = torch.tensor(data.target)
loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
model = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 2), nn.Softmax(dim=1))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
# %% diagnose
for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        criterion(model(xb), yb).backward()
        optimizer.step()
