"""Writes notebooks/real_world.ipynb (no outputs): tutorial-style trainings, diagnosed."""

from __future__ import annotations

from notebook_writer import write

CELLS = [
    ("md", """# Real-world trainings under `%%diagnose`

Two trainings written the way tutorials write them, each with a validation loop: a small
CNN on scikit-learn's 8x8 digits and an LSTM on synthetic sequences. nbdebug needs no
logging code: it tells the training loader from the validation loader, computes
held-out accuracy and loss from the evaluation passes it sees, and checks the run."""),
    ("code", "%load_ext nbdebug"),
    ("md", "## A CNN on digits, with a validation loop"),
    ("code", """import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split
from sklearn.datasets import load_digits

torch.manual_seed(0)
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
images = (images - images.mean()) / images.std()
labels = torch.tensor(digits.target)
train_ds, val_ds = random_split(TensorDataset(images, labels), [1500, 297],
                                generator=torch.Generator().manual_seed(0))
train_loader = DataLoader(train_ds, batch_size=64, shuffle=True)
val_loader = DataLoader(val_ds, batch_size=128)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2), nn.Dropout(0.1))
        self.classifier = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


cnn = SmallCNN()
optimizer = torch.optim.Adam(cnn.parameters(), lr=1e-3)
criterion = nn.CrossEntropyLoss()"""),
    ("code", """%%diagnose --save build/real_world-cnn.json
for epoch in range(4):
    cnn.train()
    for images_b, labels_b in train_loader:
        optimizer.zero_grad()
        loss = criterion(cnn(images_b), labels_b)
        loss.backward()
        optimizer.step()
    cnn.eval()
    correct = total = 0
    with torch.no_grad():
        for images_b, labels_b in val_loader:
            correct += (cnn(images_b).argmax(1) == labels_b).sum().item()
            total += len(labels_b)
    print(f"epoch {epoch}: val accuracy {correct / total:.3f}")"""),
    ("md", "## An LSTM on synthetic sequences, with clipping and a validation loop"),
    ("code", """torch.manual_seed(0)
seqs = torch.randn(1200, 20, 4)
targets = ((seqs[:, :, 0].cumsum(1)[:, -1] > 0).long()
           + 2 * (seqs[:, :, 1].mean(1) > 0).long())
seq_train = DataLoader(TensorDataset(seqs[:1000], targets[:1000]), batch_size=32, shuffle=True)
seq_val = DataLoader(TensorDataset(seqs[1000:], targets[1000:]), batch_size=100)


class SeqClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 32, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        out, (h, c) = self.lstm(x)
        return self.head(h[-1])


rnn = SeqClassifier()
rnn_opt = torch.optim.Adam(rnn.parameters(), lr=3e-3)"""),
    ("code", """%%diagnose --save build/real_world-lstm.json
for epoch in range(4):
    rnn.train()
    for x, y in seq_train:
        rnn_opt.zero_grad()
        loss = nn.functional.cross_entropy(rnn(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), max_norm=1.0)
        rnn_opt.step()
    rnn.eval()
    with torch.no_grad():
        val_loss = sum(nn.functional.cross_entropy(rnn(x), y, reduction="sum").item()
                       for x, y in seq_val) / 200
    print(f"epoch {epoch}: val loss {val_loss:.3f}")"""),
]


if __name__ == "__main__":
    write(CELLS, "real_world.ipynb")
