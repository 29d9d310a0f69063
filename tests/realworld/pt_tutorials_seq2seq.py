# healthy
# source: pytorch/tutorials, intermediate_source/seq2seq_translation_tutorial.py
# The translation tutorial's EncoderRNN (Embedding + GRU) and DecoderRNN (Embedding, ReLU,
# GRU, Linear, log_softmax) with teacher forcing, NLLLoss over every target position,
# two Adam optimizers (lr=0.001), batch 32. Offline: "translate" digit strings into their
# reversal (a toy language pair of 12 tokens), sequences of length 6.
import torch
import torch.nn.functional as F
from torch import nn

torch.manual_seed(0)
SOS, vocab, hidden_size, length = 0, 12, 64, 6
src = torch.randint(2, vocab, (640, length))
tgt = src.flip(1)


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(0.1)

    def forward(self, inp):
        return self.gru(self.dropout(self.embedding(inp)))


class DecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, encoder_hidden, target):
        start = torch.full((target.size(0), 1), SOS, dtype=torch.long)
        decoder_input = torch.cat([start, target[:, :-1]], 1)          # teacher forcing
        output, _ = self.gru(F.relu(self.embedding(decoder_input)), encoder_hidden)
        return F.log_softmax(self.out(output), dim=-1)


encoder, decoder = EncoderRNN(vocab, hidden_size), DecoderRNN(hidden_size, vocab)
encoder_optimizer = torch.optim.Adam(encoder.parameters(), lr=0.001)
decoder_optimizer = torch.optim.Adam(decoder.parameters(), lr=0.001)
criterion = nn.NLLLoss()
# %% diagnose
for epoch in range(8):
    perm = torch.randperm(len(src))
    for i in range(0, len(src), 32):
        b = perm[i:i + 32]
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        _, encoder_hidden = encoder(src[b])
        decoder_outputs = decoder(encoder_hidden, tgt[b])
        loss = criterion(decoder_outputs.reshape(-1, vocab), tgt[b].reshape(-1))
        loss.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()
