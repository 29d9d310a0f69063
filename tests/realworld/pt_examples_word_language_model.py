# healthy
# source: pytorch/examples, word_language_model/main.py and model.py
# The official word-level language model: embedding, a 2-layer LSTM with dropout 0.2,
# a linear decoder, CrossEntropyLoss on batchified token streams cut into bptt=35
# windows with the hidden state detached between windows, gradients clipped to 0.25
# and a plain SGD update written by hand (p.data.add_(p.grad, alpha=-lr)) at lr=20.
# Offline: a small synthetic corpus drawn from a fixed bigram table.
import torch
from torch import nn

torch.manual_seed(1)
ntokens, nsteps = 50, 12000
table = torch.softmax(torch.randn(ntokens, ntokens) * 3, dim=1)
tokens = [0]
for _ in range(nsteps - 1):
    tokens.append(int(torch.multinomial(table[tokens[-1]], 1)))
data = torch.tensor(tokens)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    return data[:nbatch * bsz].view(bsz, -1).t().contiguous()


train_data = batchify(data, 20)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.2):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, inp, hidden):
        emb = self.drop(self.encoder(inp))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)).view(-1, self.decoder.out_features), hidden

    def init_hidden(self, bsz):
        w = next(self.parameters())
        return (w.new_zeros(self.nlayers, bsz, self.nhid),
                w.new_zeros(self.nlayers, bsz, self.nhid))


model = RNNModel(ntokens, 32, 32, 2)
criterion = nn.CrossEntropyLoss()
lr, bptt, clip = 20.0, 35, 0.25
# %% diagnose
for epoch in range(2):
    model.train()
    hidden = model.init_hidden(20)
    for i in range(0, train_data.size(0) - 1, bptt):
        seq_len = min(bptt, len(train_data) - 1 - i)
        inputs, targets = train_data[i:i + seq_len], train_data[i + 1:i + 1 + seq_len].reshape(-1)
        hidden = tuple(h.detach() for h in hidden)
        model.zero_grad()
        output, hidden = model(inputs, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
