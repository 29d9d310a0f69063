# healthy
# source: huggingface/transformers docs, "Fine-tune a pretrained model" (training in native PyTorch)
# The Hugging Face course's plain PyTorch loop: batches are dicts (input_ids,
# attention_mask, labels), outputs = model(**batch), loss = outputs.loss, AdamW,
# a linear learning-rate schedule without warm-up stepped every batch, then
# optimizer.zero_grad(); an evaluation loop under no_grad reads outputs.logits.
# Offline: a small transformer encoder classifier with a HF-style output object, on a toy
# sentiment task of token sequences.
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class ToyReviews(Dataset):
    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(3, 40, (n, 16), generator=g)
        self.labels = ((self.ids < 20).sum(1) > 8).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(16, dtype=torch.long),
                "labels": self.labels[i]}


class SequenceClassifierOutput(dict):
    __getattr__ = dict.__getitem__


class TinyEncoderForSequenceClassification(nn.Module):
    def __init__(self, vocab=40, dim=32, num_labels=2):
        super().__init__()
        self.embeddings = nn.Embedding(vocab, dim)
        layer = nn.TransformerEncoderLayer(dim, 2, 64, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.classifier = nn.Linear(dim, num_labels)

    def forward(self, input_ids, attention_mask, labels=None):
        h = self.encoder(self.embeddings(input_ids),
                         src_key_padding_mask=attention_mask == 0)
        logits = self.classifier(h.mean(1))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


torch.manual_seed(0)
train_dataloader = DataLoader(ToyReviews(480, 1), shuffle=True, batch_size=16)
eval_dataloader = DataLoader(ToyReviews(160, 2), batch_size=32)
model = TinyEncoderForSequenceClassification()
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
num_epochs = 3
num_training_steps = num_epochs * len(train_dataloader)
lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda step: max(0.0, 1 - step / num_training_steps))
# %% diagnose
for epoch in range(num_epochs):
    model.train()
    for batch in train_dataloader:
        outputs = model(**batch)
        loss = outputs.loss
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
    model.eval()
    for batch in eval_dataloader:
        with torch.no_grad():
            outputs = model(**batch)
        predictions = torch.argmax(outputs.logits, dim=-1)
