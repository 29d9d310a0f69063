# healthy
# source: pytorch/tutorials, beginner_source/blitz/cifar10_tutorial.py
# "Training a Classifier": the tutorial's Net (conv 3->6 5x5, pool, conv 6->16 5x5, pool,
# 120-84-10 MLP), CrossEntropyLoss, SGD(lr=0.001, momentum=0.9), batch 4, two epochs,
# images normalised with mean 0.5 and std 0.5 per channel. Offline: 32x32 colour images
# of ten synthetic classes (a class-specific colour pattern plus noise) replace CIFAR-10.
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
n = 1000
classes = torch.randint(0, 10, (n,))
patterns = torch.rand(10, 3, 32, 32)
images = (0.8 * patterns[classes] + 0.2 * torch.rand(n, 3, 32, 32) - 0.5) / 0.5
trainloader = DataLoader(TensorDataset(images, classes), batch_size=4, shuffle=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


net = Net()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
# %% diagnose
for epoch in range(2):
    running_loss = 0.0
    for i, (inputs, labels) in enumerate(trainloader, 0):
        optimizer.zero_grad()
        outputs = net(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
