# healthy
# source: pytorch/tutorials, beginner_source/transfer_learning_tutorial.py
# The transfer-learning tutorial's train_model(): train and val phases per epoch,
# model.train() / model.eval(), torch.set_grad_enabled(phase == "train"), batch 4,
# CrossEntropyLoss, SGD(lr=0.001, momentum=0.9) and StepLR(step_size=7, gamma=0.1), a
# new 2-class head on a convolutional backbone with BatchNorm. Offline: a small BatchNorm
# CNN pre-trained here on one task stands in for ImageNet's ResNet-18 and is fine-tuned
# on ants-vs-bees-like synthetic images (two classes of textured 32x32 images).
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)


def images(n, seed):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    freq = (1 + 2 * label).float().view(n, 1, 1, 1)
    grid = torch.linspace(0, 6.28, 32)
    wave = torch.sin(freq * grid.view(1, 1, 1, 32)) * torch.cos(freq * grid.view(1, 1, 32, 1))
    return wave.expand(n, 3, 32, 32) + 0.5 * torch.randn(n, 3, 32, 32, generator=g), label


dataloaders = {"train": DataLoader(TensorDataset(*images(240, 1)), batch_size=4, shuffle=True),
               "val": DataLoader(TensorDataset(*images(80, 2)), batch_size=4)}
backbone = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
model_ft = nn.Sequential(backbone, nn.Linear(32, 2))
criterion = nn.CrossEntropyLoss()
optimizer_ft = torch.optim.SGD(model_ft.parameters(), lr=0.001, momentum=0.9)
exp_lr_scheduler = torch.optim.lr_scheduler.StepLR(optimizer_ft, step_size=7, gamma=0.1)


def train_model(model, criterion, optimizer, scheduler, num_epochs=3):
    for epoch in range(num_epochs):
        for phase in ["train", "val"]:
            model.train() if phase == "train" else model.eval()
            running_corrects = 0
            for inputs, labels in dataloaders[phase]:
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_corrects += (outputs.argmax(1) == labels).sum().item()
            if phase == "train":
                scheduler.step()
    return model
# %% diagnose
model_ft = train_model(model_ft, criterion, optimizer_ft, exp_lr_scheduler, num_epochs=3)
