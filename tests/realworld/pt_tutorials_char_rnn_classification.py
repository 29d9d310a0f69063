# healthy
# source: pytorch/tutorials, intermediate_source/char_rnn_classification_tutorial.py
# Classifying names by their language with a character-level RNN: one-hot letters into
# nn.RNN(n_letters, 128), a Linear head and LogSoftmax, NLLLoss, SGD(lr=0.15) without
# momentum, mini-batches of names. Offline: names of three made-up "languages" generated
# from different letter distributions, padded to a fixed length.
import string

import torch
from torch import nn

torch.manual_seed(0)
letters = string.ascii_lowercase
n_letters, n_langs, length = len(letters), 3, 8
prefs = torch.softmax(torch.randn(n_langs, n_letters) * 2.5, dim=1)
lang = torch.randint(0, n_langs, (900,))
idx = torch.stack([torch.multinomial(prefs[c], length, replacement=True) for c in lang])
names = nn.functional.one_hot(idx, n_letters).float()


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, batch_first=True)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        _, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


rnn = CharRNN(n_letters, 128, n_langs)
criterion = nn.NLLLoss()
optimizer = torch.optim.SGD(rnn.parameters(), lr=0.15)
# %% diagnose
for epoch in range(6):
    rnn.train()
    perm = torch.randperm(len(lang))
    for i in range(0, len(lang), 64):
        batch = perm[i:i + 64]
        loss = criterion(rnn(names[batch]), lang[batch])
        loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), 3)
        optimizer.step()
        optimizer.zero_grad()
