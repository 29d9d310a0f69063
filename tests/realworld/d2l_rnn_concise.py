# healthy
# source: d2l-ai/d2l-en, chapter_recurrent-neural-networks/rnn-concise.md (PyTorch)
# The concise character-level RNN language model: one-hot characters into nn.RNN with 32
# hidden units, a Linear output layer, CrossEntropyLoss over every position, SGD(lr=1)
# and the book's gradient clipping to norm 1. Offline: a short text repeated with small
# variations stands in for "The Time Machine"; subsequences of 32 characters.
import torch
from torch import nn

torch.manual_seed(0)
text = ("the time traveller for so it will be convenient to speak of him was expounding a "
        "recondite matter to us his grey eyes shone and twinkled ") * 30
vocab = sorted(set(text))
corpus = torch.tensor([vocab.index(c) for c in text])
num_steps, batch_size, V = 32, 32, len(vocab)


class RNNModel(nn.Module):
    def __init__(self, num_hiddens, vocab_size):
        super().__init__()
        self.rnn = nn.RNN(vocab_size, num_hiddens)
        self.linear = nn.Linear(num_hiddens, vocab_size)
        self.vocab_size = vocab_size

    def forward(self, inputs, state=None):
        X = nn.functional.one_hot(inputs.T, self.vocab_size).float()
        Y, state = self.rnn(X, state)
        return self.linear(Y.reshape(-1, Y.shape[-1])), state


net = RNNModel(32, V)
loss = nn.CrossEntropyLoss()
updater = torch.optim.SGD(net.parameters(), lr=1)
# %% diagnose
for epoch in range(4):
    starts = torch.randperm(len(corpus) - num_steps - 1)[:batch_size * 8]
    for i in range(0, len(starts), batch_size):
        s = starts[i:i + batch_size]
        X = torch.stack([corpus[j:j + num_steps] for j in s])
        Y = torch.stack([corpus[j + 1:j + 1 + num_steps] for j in s])
        y_hat, _ = net(X)
        l = loss(y_hat, Y.T.reshape(-1))
        updater.zero_grad()
        l.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1)
        updater.step()
