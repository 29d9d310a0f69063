# expect: 20=problem
# source: https://discuss.pytorch.org/t/kullback-leibler-divergence-loss-function-giving-negative-values/763
# "Kullback-Leibler divergence loss function giving negative values": the tutorial's CNN
# ends in F.softmax and is trained with nn.KLDivLoss against one-hot targets. The answer:
# KLDivLoss expects log-probabilities as input (F.log_softmax), probabilities as target.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
labels = torch.tensor(digits.target)
trainloader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = F.relu(self.fc1(x.view(-1, 16 * 2 * 2)))
        return F.softmax(self.fc2(x), dim=1)


net = Net()
criterion = nn.KLDivLoss(reduction="batchmean")
optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
# %% diagnose
for epoch in range(2):
    for inputs, labels_b in trainloader:
        optimizer.zero_grad()
        loss = criterion(net(inputs), F.one_hot(labels_b, 10).float())
        loss.backward()
        optimizer.step()
