"""Writes notebooks/article_tour.ipynb (no outputs): the article's twenty points and
"stuck", one section each, with a buggy training that nbdebug flags and the fixed one.

Each section's heading is ``## N. <title>`` with the title from ``nbdebug/points.py``, so
the README can link to the sections by their anchors. Every diagnosed cell saves its
report under ``build/tour/`` (``NN-bug.json``, ``NN-fix.json``; ``21`` is "stuck"), which
``tests/test_notebook_article_tour.py`` reads.
"""

from __future__ import annotations

import pathlib
import sys

from notebook_writer import write

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from nbdebug.points import POINTS  # noqa: E402

#: file number of each section: the point itself, 21 for "stuck"
NUMBERS: dict[int | str, int] = {**{k: k for k in POINTS if isinstance(k, int)}, "stuck": 21}


def heading(key: int | str) -> str:
    """The section's heading: '## N. title' (the README links to its anchor)."""
    label = f"{key}." if isinstance(key, int) else "Stuck:"
    return f"## {label} {POINTS[key][0]}"


def diagnose(key: int | str, kind: str) -> str:
    return f"%%diagnose --save build/tour/{NUMBERS[key]:02d}-{kind}.json"


INTRO = [
    ("md", """# A tour of the article's twenty points

nbdebug's checklist follows a well-known deep-learning debugging article
("深度学习debug沉思录", *Reflections on debugging deep learning*): twenty points, plus the
question it ends with, a loss that gets stuck. This notebook takes them one at a time. Each section
says in a few lines why the point matters and what nbdebug looks at, runs a small
training that gets the point wrong under `%%diagnose`, then the same training fixed,
which comes out with no warning and no problem.

The trainings are tiny (scikit-learn's 8x8 digits, its wine measurements, or synthetic
data; a few epochs of small models), so the whole notebook runs in about a minute on
one CPU core. Each diagnosis is saved with `--save build/tour/NN-bug.json` /
`NN-fix.json`; `nbdebug.last_report()` returns the last one, and `%nbdebug explain N`
prints what the article says about point N.

Point 14 (BatchNorm placement) and point 16 (batch size) are advice in the article, not
mistakes: nbdebug shows them as an `info` note that leaves the checklist item `ok`.
Points 8, 12, 15 and 18 are setups the article advises against; nbdebug notes them as
`info` too, and raises a warning only when the run shows the harm the article predicts
(a stall, train-mode and eval-mode results far apart, a rising held-out loss). The
small trainings here show no such harm, so their items stay `ok` with the note."""),
    ("code", "%load_ext nbdebug"),
    ("md", """## Set-up

The data and two helpers every section uses: `mlp()` builds a small classifier for the
64 digit pixels, and `fit()` is an ordinary training loop (train for some epochs, then
one pass over each held-out loader under `torch.no_grad()`). nbdebug needs nothing from
them: it finds the model, optimizer, loaders and loss by itself, whether the loop is
written in the cell or called as a function."""),
    ("code", """import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from sklearn.datasets import load_digits, load_wine

torch.set_num_threads(1)       # the models are tiny: one thread is the fastest
torch.manual_seed(0)

# digits: 1797 images of 8x8 pixels with values 0..16, ten classes, in a random order
digits = load_digits()
order = torch.randperm(len(digits.target))
pixels = torch.tensor(digits.data, dtype=torch.float32)[order]
labels = torch.tensor(digits.target)[order]
mu, sd = pixels[:1200].mean(0), pixels[:1200].std(0) + 1e-6   # training-set statistics
X = (pixels - mu) / sd                                          # standardised pixels
X_train, y_train = X[:1200], labels[:1200]
X_val, y_val = X[1200:1500], labels[1200:1500]
X_test, y_test = X[1500:], labels[1500:]
train_set = TensorDataset(X_train, y_train)
train_dl = DataLoader(train_set, batch_size=64, shuffle=True)
val_dl = DataLoader(TensorDataset(X_val, y_val), batch_size=150)

# wine: 178 samples of 13 chemical measurements on very different scales, three classes
wine = load_wine()
wine_raw = torch.tensor(wine.data, dtype=torch.float32)
wine_y = torch.tensor(wine.target)
wine_std = (wine_raw - wine_raw.mean(0)) / wine_raw.std(0)


def mlp(hidden=64, *, bias=True):
    \"\"\"A small classifier for the 64 digit pixels.\"\"\"
    return nn.Sequential(nn.Linear(64, hidden, bias=bias), nn.ReLU(),
                         nn.Linear(hidden, 10, bias=bias))


def fit(model, opt, loader, epochs=2, criterion=None, held_out=()):
    \"\"\"Train for some epochs, then run each held-out loader once in eval mode.\"\"\"
    criterion = criterion or nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        for held in held_out:
            for xb, yb in held:
                model(xb)"""),
]


#: (key, about, [preparation cell,] buggy cell body, fix text, fixed cell body)
SECTIONS: list[tuple[int | str, str, ...]] = [
    (1, """Cross-entropy starts near ln(C) (2.3 for ten classes) and can never reach 0. A loss that
starts far above it, or falls to 0.0000 at once, means logits so large that softmax
saturates: the predictions are confidently wrong (or right) and the gradients vanish. The
usual cause is an initialisation far wider than Kaiming/Xavier. nbdebug watches the
magnitude of the model's output, compares the first loss with ln(C) and the weights'
scale with the fan-in rule (check `huge-logits`).

Here the weights are drawn from N(0, 3²): logits in the thousands.""",
     """torch.manual_seed(0)
model = mlp(256)
for layer in model:
    if isinstance(layer, nn.Linear):
        nn.init.normal_(layer.weight, std=3.0)          # far too wide
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)""",
     """**Fix:** keep PyTorch's default initialisation (or `nn.init.kaiming_normal_`): the first
loss is close to ln(10).""",
     """torch.manual_seed(0)
model = mlp(256)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (2, """Biases only shift the hyperplanes; decaying them towards 0 (L2 or weight decay) shrinks
what the model can represent and causes underfitting. The same holds for the scales of
normalisation layers. nbdebug reads the optimizer's param groups and names the 1-D
parameters that get weight decay; the severity depends on the strength and on whether the
decay is coupled (Adam, SGD) or decoupled (AdamW) (check `bias-decay`).

Here Adam applies L2 `weight_decay=0.05` to every parameter, biases included.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.05)
fit(model, opt, train_dl)""",
     """**Fix:** put the 1-D parameters in a group of their own with `weight_decay=0`, and use
AdamW's decoupled decay for the weights.""",
     """torch.manual_seed(0)
model = mlp()
decay = [p for p in model.parameters() if p.ndim > 1]
no_decay = [p for p in model.parameters() if p.ndim <= 1]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                         {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
fit(model, opt, train_dl)"""),

    (3, """A learning rate that is too large makes the loss oscillate without progress or explode;
the article advises starting from Adam with 1e-3 .. 1e-4. nbdebug looks at the shape of
the loss curve (divergence, jumps by orders of magnitude, oscillation) together with the
update-to-weight ratio ‖Δw‖/‖w‖ of each layer (about 1e-3 is healthy) and reports each
param group's learning rate (check `lr-too-large`).

Here Adam runs with `lr=1.0`.""",
     """torch.manual_seed(0)
model = mlp(128)
opt = torch.optim.Adam(model.parameters(), lr=1.0)
fit(model, opt, train_dl)""",
     """**Fix:** Adam's usual `lr=1e-3`.""",
     """torch.manual_seed(0)
model = mlp(128)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (4, """The last layer must output raw logits: `nn.CrossEntropyLoss` applies its own
log-softmax, so a Softmax (or ReLU, Sigmoid) in front of it squashes the logits and
training crawls. nbdebug reads the autograd graph of the loss to see which operation fed
it: a softmax, ReLU, sigmoid or tanh before a cross-entropy, a sigmoid before
`BCEWithLogitsLoss`, probabilities given to `NLLLoss` (check `logits-activation`).

Here the model ends with `nn.Softmax`, then `nn.CrossEntropyLoss`: a double softmax.""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl, criterion=nn.CrossEntropyLoss())""",
     """**Fix:** drop the Softmax; apply `softmax` only where probabilities are wanted, outside the
loss.""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl, criterion=nn.CrossEntropyLoss())"""),

    (5, """Features on very different scales, or far from zero mean, slow training down: the first
layer's weights cannot suit them all. nbdebug summarises each input feature (mean, std,
min, max) over the first training batches, on the device, and flags raw 0..255 pixels, a
feature that spreads 100x more than the median feature, a feature sitting many standard
deviations away from 0 (check `input-range`). Standardised data, one-hot columns and
sparse pixels are left alone.

Here the wine measurements go in raw: proline is in the hundreds to thousands, hue
around 1.""",
     """torch.manual_seed(0)
wine_dl = DataLoader(TensorDataset(wine_raw, wine_y), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
fit(model, opt, wine_dl, epochs=6)""",
     """**Fix:** standardise each feature: `(x - mean) / std`, with the training set's
statistics.""",
     """torch.manual_seed(0)
wine_dl = DataLoader(TensorDataset(wine_std, wine_y), batch_size=16, shuffle=True)
model = nn.Sequential(nn.Linear(13, 32), nn.ReLU(), nn.Linear(32, 3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
fit(model, opt, wine_dl, epochs=6)"""),

    (6, """Without shuffling, every epoch shows the data in the same order, and a data set saved
sorted by class feeds the model one class after the other: it learns the order, not the
task. nbdebug reads the training loader's sampler, fingerprints the batches to see the
same order in two epochs (hand-made batches too), and measures how mixed the labels of
consecutive batches are (check `shuffle`).

Here the training set is sorted by label and the loader does not shuffle.""",
     """torch.manual_seed(0)
by_label = torch.argsort(y_train, stable=True)
sorted_set = TensorDataset(X_train[by_label], y_train[by_label])
sorted_dl = DataLoader(sorted_set, batch_size=64)               # no shuffle
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, sorted_dl)""",
     """**Fix:** `shuffle=True`: a new order every epoch.""",
     """torch.manual_seed(0)
sorted_dl = DataLoader(sorted_set, batch_size=64, shuffle=True)   # the same data, shuffled
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, sorted_dl)"""),

    (7, """A batch that holds a single class pulls the whole model towards that class at each step:
training is unstable and slow. nbdebug keeps a label histogram per training batch and
compares the share of single-class batches and the batches' label entropy with what
random batches of the same size and class shares would give, so imbalanced data is not
flagged (check `single-label`).

Here the batches are drawn class by class (a "bucketed" sampler gone wrong); their order
is shuffled every epoch, so point 6 has nothing to say, but each batch holds one
digit.""",
     """torch.manual_seed(0)
buckets = [torch.nonzero(y_train == c).squeeze(1) for c in range(10)]
batches = [idx[i:i + 32] for idx in buckets for i in range(0, len(idx), 32)]
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for k in torch.randperm(len(batches)).tolist():
        b = batches[k]
        opt.zero_grad()
        F.cross_entropy(model(X_train[b]), y_train[b]).backward()
        opt.step()""",
     """**Fix:** draw the batches from the whole shuffled data set.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (8, """Plain SGD without momentum crawls through plateaus and stalls at saddle points; momentum
(or an adaptive method such as Adam) carries it through. nbdebug reads the optimizer's
type and each param group's momentum and Nesterov flag (check `sgd-momentum`); it is a
note until the loss stalls, and its fix scales the lr by (1 - momentum) to keep the step.

Here `torch.optim.SGD` runs with its default `momentum=0`.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
fit(model, opt, train_dl)""",
     """**Fix:** SGD with `momentum=0.9`.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
fit(model, opt, train_dl)"""),

    (9, """Gradients can explode, recurrent networks especially: the norm grows by orders of
magnitude in a few steps and the loss breaks down (up to Inf/NaN). nbdebug records every
parameter's gradient norm at every step, on the device, and reports the growth, the layer
that grew most, the step, and a `clip_grad_norm_` value that the early norms stay below;
it stays quiet when clipping holds the norms (check `exploding-gradients`).

Here a ReLU RNN with near-identity recurrent weights reads sequences of 40 steps, with no
clipping.""",
     """torch.manual_seed(0)
seqs = torch.randn(256, 40, 3)
sums = seqs[:, :, 0].sum(1, keepdim=True) / 10


class RNNRegressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 32, nonlinearity="relu", batch_first=True)
        self.out = nn.Linear(32, 1)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h[:, -1])


rnn = RNNRegressor()
with torch.no_grad():
    rnn.rnn.weight_hh_l0.copy_(torch.eye(32) + 0.01 * torch.randn(32, 32))
opt = torch.optim.SGD(rnn.parameters(), lr=1e-3, momentum=0.9)
for epoch in range(3):
    for i in range(0, 256, 32):
        opt.zero_grad()
        F.mse_loss(rnn(seqs[i:i + 32]), sums[i:i + 32]).backward()
        opt.step()""",
     """**Fix:** clip the gradient norm between `backward()` and `step()` (the report suggests
a `max_norm`; for long sequences an LSTM or GRU also helps).""",
     """torch.manual_seed(0)
rnn = RNNRegressor()
with torch.no_grad():
    rnn.rnn.weight_hh_l0.copy_(torch.eye(32) + 0.01 * torch.randn(32, 32))
opt = torch.optim.SGD(rnn.parameters(), lr=1e-3, momentum=0.9)
for epoch in range(3):
    for i in range(0, 256, 32):
        opt.zero_grad()
        F.mse_loss(rnn(seqs[i:i + 32]), sums[i:i + 32]).backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), max_norm=1.0)
        opt.step()"""),

    (10, """A loader can pair samples with the wrong labels (an index off by one, labels shuffled
apart from the samples), and a network fits even random labels to a training loss near 0.
The sign is a training accuracy that climbs while the held-out accuracy stays at chance.
nbdebug computes both itself, from the model's outputs and the labels of each loader it
sees evaluated under `torch.no_grad()` / `model.eval()`; it needs a held-out loader
(check `label-mismatch`).

Here the training labels were permuted on their own, apart from the images.""",
     """torch.manual_seed(0)
wrong = y_train[:200][torch.randperm(200)]                      # permuted without X
small_dl = DataLoader(TensorDataset(X_train[:200], wrong), batch_size=40, shuffle=True)
model = mlp(256)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for _ in range(6):                           # six rounds of ten epochs, then validation
    fit(model, opt, small_dl, epochs=10, held_out=[val_dl])""",
     """**Fix:** keep each label with its sample (permute both with the same index).""",
     """torch.manual_seed(0)
small_dl = DataLoader(TensorDataset(X_train[:200], y_train[:200]), batch_size=40,
                      shuffle=True)
model = mlp(256)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for _ in range(6):                           # six rounds of ten epochs, then validation
    fit(model, opt, small_dl, epochs=10, held_out=[val_dl])"""),

    (11, """When the held-out loss rises round after round while the held-out accuracy still holds
or rises, the model grows over-confident on the samples it gets wrong: a form of
overfitting that the accuracy alone hides. nbdebug computes the held-out loss and accuracy
of every evaluation round itself (check `over-confidence`).

Here a wide MLP trains for 25 epochs on 200 samples of a synthetic three-class task whose
labels are noisy (10% flipped, as real labels often are), evaluated after each epoch.""",
     """from sklearn.datasets import make_classification

features, classes = make_classification(n_samples=1000, n_features=20, n_informative=6,
                                        n_classes=3, flip_y=0.1, random_state=0)
features = torch.tensor(features, dtype=torch.float32)
classes = torch.tensor(classes)
noisy_dl = DataLoader(TensorDataset(features[:200], classes[:200]), batch_size=32,
                      shuffle=True)
noisy_val_dl = DataLoader(TensorDataset(features[500:], classes[500:]), batch_size=250)""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 3))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(25):
    fit(model, opt, noisy_dl, epochs=1, held_out=[noisy_val_dl])""",
     """**Fix:** stop early, at the round with the lowest held-out loss: the loop keeps the best
weights and stops after two rounds without improvement.""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 3))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
best, waited = float("inf"), 0
for epoch in range(25):
    fit(model, opt, noisy_dl, epochs=1)
    with torch.no_grad():
        val_loss = sum(F.cross_entropy(model(xb), yb, reduction="sum").item()
                       for xb, yb in noisy_val_dl) / 500
    if val_loss < best:
        best, waited = val_loss, 0
        best_state = {k: v.clone() for k, v in model.state_dict().items()}
    else:
        waited += 1
        if waited == 2:
            break
model.load_state_dict(best_state)"""),

    (12, """BatchNorm normalises with the mean and variance of the batch; from fewer than about 16
samples those estimates are noisy and accuracy drops. nbdebug records the batch size that
reaches each BatchNorm in training mode, and a last partial batch of one sample (check
`bn-batch`): a note, a warning when train-mode and eval-mode results are far apart.

Here a BatchNorm MLP trains with batches of 4.""",
     """torch.manual_seed(0)
tiny_dl = DataLoader(TensorDataset(X_train[:256], y_train[:256]), batch_size=4, shuffle=True)
model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, tiny_dl, epochs=1)""",
     """**Fix:** batches of 64, and `drop_last=True` so that no small last batch reaches
BatchNorm (or LayerNorm / GroupNorm when batches must stay small).""",
     """torch.manual_seed(0)
batch64_dl = DataLoader(train_set, batch_size=64, shuffle=True, drop_last=True)
model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, batch64_dl)"""),

    (13, """NaN comes from a log of 0, a division by 0, or an overflow (bad initialisation, large
learning rate), and it spreads: one NaN makes every later value NaN. The article's advice
is to find the first layer that produced it and add an eps. nbdebug keeps a finite flag
for every module's output, the loss and the gradients at every step; at the first NaN/Inf
it names the step and the first module (in execution order) whose output was not finite,
then replays that batch op by op, without changing the training, to name the operation
and its bad inputs (check `nan-origin`).

Here a standardisation layer divides by the training set's per-pixel std; some pixels are
0 in every image, their std is 0, and 0 / 0 is NaN.""",
     """torch.manual_seed(0)


class Standardize(nn.Module):
    def __init__(self, data):
        super().__init__()
        self.register_buffer("mean", data.mean(0))
        self.register_buffer("std", data.std(0))

    def forward(self, x):
        return (x - self.mean) / self.std


raw_dl = DataLoader(TensorDataset(pixels[:1200] / 16, y_train), batch_size=64, shuffle=True)
model = nn.Sequential(Standardize(pixels[:1200] / 16), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, raw_dl, epochs=1)""",
     """**Fix:** guard the division with an eps, as the report's fix says.""",
     """torch.manual_seed(0)


class Standardize(nn.Module):
    def __init__(self, data):
        super().__init__()
        self.register_buffer("mean", data.mean(0))
        self.register_buffer("std", data.std(0))

    def forward(self, x):
        return (x - self.mean) / (self.std + 1e-6)


model = nn.Sequential(Standardize(pixels[:1200] / 16), nn.Linear(64, 64), nn.ReLU(),
                      nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, raw_dl, epochs=1)"""),

    (14, """Where BatchNorm goes relative to the activation is an open question in the article:
before it, as in the original paper; after it, as many find works better; the 2019 "IC
layer" orders ReLU -> BatchNorm + dropout -> weights. Both common orders are in use, so this is
advice, not a mistake: nbdebug lists the layer order around each BatchNorm as an `info`
note and leaves the checklist item `ok` (check `bn-placement`).

Here BatchNorm comes after the ReLU.""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.BatchNorm1d(64), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, batch64_dl)""",
     """**The other order:** the paper's Linear -> BatchNorm -> ReLU. Nothing needed fixing;
the note now names this order.""",
     """torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, batch64_dl)"""),

    (15, """Dropout on convolution features tends to hurt accuracy (neighbouring pixels carry the
same information); if it is used there, keep p small, 0.1-0.2, and keep the larger
dropout for the fully connected head. nbdebug reads the layer order and flags Dropout /
Dropout2d with p > 0.2 right after a convolution (check `dropout-conv`): a note, a
warning when the run shows harm.

Here a small CNN on the 8x8 digit images uses `Dropout2d(0.5)` after its convolution.""",
     """torch.manual_seed(0)
images_dl = DataLoader(TensorDataset(X_train.view(-1, 1, 8, 8), y_train), batch_size=64,
                       shuffle=True)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.5),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
fit(cnn, opt, images_dl)""",
     """**Fix:** `Dropout2d(0.1)` after the convolution.""",
     """torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.1),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
opt = torch.optim.Adam(cnn.parameters(), lr=1e-3)
fit(cnn, opt, images_dl)"""),

    (16, """The article notes that smaller batches often generalise better than large ones and
suggests trying both. No harm is shown by a batch size alone, so nbdebug gives an `info`
note when a training batch holds a quarter of the data set or more (at most four steps an
epoch), and leaves the checklist item `ok` (check `batch-size`).

Here every step is one full batch of all 1200 training images.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for step in range(30):
    opt.zero_grad()
    F.cross_entropy(model(X_train), y_train).backward()
    opt.step()""",
     """**The other choice:** mini-batches of 64, shuffled: no note.""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (17, """Weights initialised to zero, or to one constant, give every unit of a layer the same
gradient: the units never become different and the layer learns nothing (biases may be
zero). nbdebug looks at every weight tensor at the first step: all zero or constant is a
problem; a scale more than 10x outside the range from PyTorch's default to Kaiming is a
warning (check `zero-init`).

Here the hidden layer's weights start at zero.""",
     """torch.manual_seed(0)
model = mlp()
nn.init.zeros_(model[0].weight)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)""",
     """**Fix:** keep PyTorch's default initialisation (or `nn.init.kaiming_uniform_`).""",
     """torch.manual_seed(0)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (18, """Without biases every hyperplane passes through the origin, and the model underfits. A
layer may drop its bias when a normalisation layer follows it directly (BatchNorm has its
own shift). nbdebug flags Linear / Conv layers with `bias=False` that no normalisation
layer follows (check `missing-bias`): a note, a warning when the training stalls.

Here the MLP is built with `bias=False`.""",
     """torch.manual_seed(0)
model = mlp(bias=False)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)""",
     """**Fix:** keep `bias=True` (the default).""",
     """torch.manual_seed(0)
model = mlp(bias=True)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
fit(model, opt, train_dl)"""),

    (19, """Validation accuracy far above test accuracy means the two held-out sets do not come from
one distribution: typically the validation split was cut from the training data and the
test set was collected, or preprocessed, differently. The validation number then
over-states how the model will do. nbdebug evaluates every held-out loader itself and
compares their accuracies and input statistics; it needs two held-out loaders (check
`val-test-shift`).

Here the test images went through another script that scaled them to [0, 1], while the
training and validation images were standardised.""",
     """torch.manual_seed(0)
test_dl = DataLoader(TensorDataset(pixels[1500:] / 16, y_test), batch_size=150)   # [0, 1]
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
fit(model, opt, train_dl, epochs=3, held_out=[val_dl, test_dl])""",
     """**Fix:** apply the same preprocessing, with the training set's statistics, to every
split.""",
     """torch.manual_seed(0)
test_dl = DataLoader(TensorDataset((pixels[1500:] - mu) / sd, y_test), batch_size=150)
model = mlp()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
fit(model, opt, train_dl, epochs=3, held_out=[val_dl, test_dl])"""),

    (20, """KL divergence can never be negative; a negative KL loss means its inputs are not
distributions. PyTorch's `KLDivLoss` / `F.kl_div` wants log-probabilities as input and
probabilities as target (unless `log_target=True`), and `reduction='batchmean'` for the
true KL. nbdebug checks the values that reach every KL loss: an input that is not <= 0,
a target that does not sum to 1, a negative loss, `reduction='mean'` (check `kl-div`).

Here a student is distilled from a teacher (trained just below, outside the diagnosis),
with the student's softmax probabilities given as the input.""",
     """torch.manual_seed(0)
teacher = mlp(128)
teacher_opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
fit(teacher, teacher_opt, train_dl, epochs=3)
teacher.eval().requires_grad_(False)        # frozen from here on
teacher.zero_grad()                         # and without the gradients of its training""",
     """torch.manual_seed(0)
student = mlp(32)
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
kl = nn.KLDivLoss(reduction="batchmean")
for epoch in range(2):
    for xb, yb in train_dl:
        with torch.no_grad():
            soft = F.softmax(teacher(xb), dim=1)
        loss = kl(F.softmax(student(xb), dim=1), soft)       # probabilities, not log-probs
        opt.zero_grad()
        loss.backward()
        opt.step()""",
     """**Fix:** give `log_softmax` of the student's logits as the input.""",
     """torch.manual_seed(0)
student = mlp(32)
opt = torch.optim.Adam(student.parameters(), lr=1e-3)
kl = nn.KLDivLoss(reduction="batchmean")
for epoch in range(2):
    for xb, yb in train_dl:
        with torch.no_grad():
            soft = F.softmax(teacher(xb), dim=1)
        loss = kl(F.log_softmax(student(xb), dim=1), soft)
        opt.zero_grad()
        loss.backward()
        opt.step()"""),

    ("stuck", """The article ends with a reader's question: from some step on, the training loss
does not change at all. nbdebug names this on its own: the loss stops improving, and the
cause is told apart from the timelines: dead ReLUs, saturated sigmoid/tanh units, vanishing
gradients, a learning rate far too small, parameters that never change (not in the
optimizer, `requires_grad` off, a `.detach()`), gradients never zeroed, no gradient path
to the loss (check `stuck`).

Here, as in the question, the loss falls for a while, then a schedule raises Adam's
learning rate 100x; the large steps push every unit of the narrow hidden layer below 0
for all inputs, the ReLUs die and the loss freezes near ln(10). (Point 3 flags the
raised learning rate too.)""",
     """torch.manual_seed(0)
scaled_dl = DataLoader(TensorDataset(pixels[:1200] / 16, y_train), batch_size=64,
                       shuffle=True)
model = mlp(8)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=100.0)
for epoch in range(6):
    fit(model, opt, scaled_dl, epochs=1)
    sched.step()""",
     """**Fix:** keep the learning rate that worked (no schedule that raises it).""",
     """torch.manual_seed(0)
model = mlp(8)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for epoch in range(6):
    fit(model, opt, scaled_dl, epochs=1)"""),
]


def section_cells(key: int | str, about: str, *cells: str) -> list[tuple[str, str]]:
    """Heading and text, [a plain preparation cell,] the buggy cell, the fix, the fixed cell."""
    *prep, bug, fix_text, fix = cells
    return ([("md", f"{heading(key)}\n\n{about}")] + [("code", c) for c in prep]
            + [("code", f"{diagnose(key, 'bug')}\n{bug}"), ("md", fix_text),
               ("code", f"{diagnose(key, 'fix')}\n{fix}")])


#: the pre-flight section: experiments on copies at the first step (``--preflight``)
PREFLIGHT = [
    ("md", """## Pre-flight: before a long training

Some mistakes show only late in a run, or never when the cell has no held-out data: labels
that do not belong to their samples (point 10), a learning rate that diverges only after
an epoch (point 3), a bad init (points 1 and 17), a model that ignores its inputs.
`%%diagnose --preflight` runs, at the first optimizer step and on copies, the experiments
an expert runs before trusting a long training: the loss at init against ln(C),
overfitting one small batch, an lr range test, zeroed inputs, and permuted labels. The
real training then goes on bitwise as without them; the experiments take a fraction of a
second here (`--preflight-budget SECONDS` caps them).

Here the labels were shuffled apart from the images, there is no held-out loader, and
SGD runs at 30 times a good learning rate: both are flagged at step 0."""),
    ("code", """%%diagnose --preflight --save build/tour/pf-bug.json
torch.manual_seed(0)
shuffled_dl = DataLoader(TensorDataset(X_train, y_train[torch.randperm(1200)]),
                         batch_size=128, shuffle=True)
model = mlp(128)
opt = torch.optim.SGD(model.parameters(), lr=1.5, momentum=0.9)
for xb, yb in shuffled_dl:
    opt.zero_grad()
    F.cross_entropy(model(xb), yb).backward()
    opt.step()"""),
    ("md", """**Fix:** pair each image with its own label and use the learning rate the sweep
suggests (about 0.05 for SGD with momentum here): pre-flight is silent."""),
    ("code", """%%diagnose --preflight --save build/tour/pf-fix.json
torch.manual_seed(0)
model = mlp(128)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
fit(model, opt, train_dl, epochs=1)"""),
]


OUTRO = [("md", """## What next

`%nbdebug checks` lists every check with its point; `%nbdebug explain N` prints what the
article says about point N and what nbdebug looks at. Checks beyond the article
(parameters missing from the optimizer, gradients never zeroed, train/eval mode, frozen
models) appear in the same checklist after "stuck". `notebooks/real_world.ipynb` runs
two tutorial-style trainings that come out clean.""")]


CELLS = INTRO + [c for s in SECTIONS for c in section_cells(*s)] + PREFLIGHT + OUTRO


if __name__ == "__main__":
    write(CELLS, "article_tour.ipynb")
