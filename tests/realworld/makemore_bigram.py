# healthy
# source: karpathy/makemore (and the "makemore part 1" lecture notebook), the bigram model
# The neural bigram model: a 27x27 weight matrix W with requires_grad as the only
# parameter, one-hot characters times W give logits, softmax by hand, the loss is the
# mean negative log-likelihood plus 0.01 * (W**2).mean(), and a plain update written by
# hand (W.grad = None; loss.backward(); W.data += -50 * W.grad). No nn.Module, no
# optimizer. Offline: a few dozen names.
import torch
import torch.nn.functional as F

names = ("emma olivia ava isabella sophia charlotte mia amelia harper evelyn abigail emily "
         "elizabeth mila ella avery sofia camila aria scarlett victoria madison luna grace "
         "chloe penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey "
         "ellie stella natalie zoe leah hazel violet aurora savannah audrey brooklyn bella "
         "claire skylar lucy paisley everly anna caroline nova genesis emilia kennedy").split()
stoi = {s: i + 1 for i, s in enumerate("abcdefghijklmnopqrstuvwxyz")}
stoi["."] = 0
xs, ys = [], []
for w in names:
    chs = ["."] + list(w) + ["."]
    for ch1, ch2 in zip(chs, chs[1:]):
        xs.append(stoi[ch1])
        ys.append(stoi[ch2])
xs, ys = torch.tensor(xs), torch.tensor(ys)
g = torch.Generator().manual_seed(2147483647)
W = torch.randn((27, 27), generator=g, requires_grad=True)
# %% diagnose
for k in range(100):
    xenc = F.one_hot(xs, num_classes=27).float()
    logits = xenc @ W
    counts = logits.exp()
    probs = counts / counts.sum(1, keepdims=True)
    loss = -probs[torch.arange(len(ys)), ys].log().mean() + 0.01 * (W ** 2).mean()
    W.grad = None
    loss.backward()
    W.data += -50 * W.grad
