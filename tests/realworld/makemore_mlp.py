# healthy
# source: karpathy/makemore (and the "makemore part 2: MLP" lecture notebook)
# The character-level MLP of Bengio et al. built from raw tensors: an embedding table C,
# a tanh hidden layer (W1, b1) and an output layer (W2, b2), all leaf tensors with
# requires_grad, F.cross_entropy on minibatches of 32 drawn with torch.randint, and a
# hand-written update p.data += -lr * p.grad with lr 0.1. No nn.Module, no optimizer.
import torch
import torch.nn.functional as F

names = ("emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily "
         "elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace "
         "chloe penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey").split()
stoi = {s: i + 1 for i, s in enumerate("abcdefghijklmnopqrstuvwxyz")}
stoi["."] = 0
block_size, X, Y = 3, [], []
for w in names:
    context = [0] * block_size
    for ch in w + ".":
        X.append(context)
        Y.append(stoi[ch])
        context = context[1:] + [stoi[ch]]
X, Y = torch.tensor(X), torch.tensor(Y)
g = torch.Generator().manual_seed(2147483647)
C = torch.randn((27, 10), generator=g)
W1 = torch.randn((30, 200), generator=g) * (5 / 3) / 30 ** 0.5
b1 = torch.randn(200, generator=g) * 0.01
W2 = torch.randn((200, 27), generator=g) * 0.01
b2 = torch.zeros(27)
parameters = [C, W1, b1, W2, b2]
for p in parameters:
    p.requires_grad = True
# %% diagnose
for i in range(300):
    ix = torch.randint(0, X.shape[0], (32,), generator=g)
    emb = C[X[ix]]
    h = torch.tanh(emb.view(-1, 30) @ W1 + b1)
    logits = h @ W2 + b2
    loss = F.cross_entropy(logits, Y[ix])
    for p in parameters:
        p.grad = None
    loss.backward()
    for p in parameters:
        p.data += -0.1 * p.grad
