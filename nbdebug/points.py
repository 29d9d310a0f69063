"""The article's twenty points, plus "stuck", in checklist order.

Titles are short English summaries of ``ARTICLE.md``; ``explain`` texts say what the
article advises. Checks beyond the article add their own keys through the registry.
"""

from __future__ import annotations

POINTS: dict[int | str, tuple[str, str]] = {
    1: ("Loss collapses to 0 / huge logits",
        "Cross-entropy can never reach 0; a loss of 0.0000 at once means logits so large "
        "that softmax saturates, usually from a bad initialisation. Use Kaiming/Xavier init."),
    2: ("No weight decay on biases",
        "L2 / weight decay on biases and norm scales shrinks the model's capacity and "
        "causes underfitting; put 1-D parameters in a group with weight_decay=0."),
    3: ("Learning rate not too large",
        "A learning rate that is too large makes the loss oscillate or explode. Start from "
        "Adam with 1e-3 .. 1e-4."),
    4: ("No activation on the logits",
        "The last layer must output raw logits: no ReLU/Sigmoid/Softmax before a softmax-"
        "based loss."),
    5: ("Input value ranges normalised",
        "Features on different scales or far from zero mean slow training; standardise "
        "the inputs."),
    6: ("Training data shuffled every epoch",
        "Without shuffling the model learns the order of the data; shuffle the training "
        "set every epoch."),
    7: ("Mixed labels in every batch",
        "Batches that hold a single class make training unstable; mix classes in every "
        "batch."),
    8: ("No vanilla SGD",
        "Plain SGD without momentum stalls at saddle points; use momentum or Adam."),
    9: ("Gradients checked and clipped",
        "Look at gradients per layer; clip exploding gradients (LSTMs especially)."),
    10: ("Labels match the samples",
         "Networks fit even random labels to zero loss; if training accuracy is high and "
         "held-out accuracy is at chance, check how samples and labels are paired."),
    11: ("Held-out loss vs accuracy",
         "Held-out loss rising while held-out accuracy still rises means the model grows "
         "over-confident: a form of overfitting."),
    12: ("BatchNorm with large enough batches",
         "BatchNorm estimates poor statistics from batches smaller than about 16."),
    13: ("No NaN / Inf",
         "NaN comes from log(0), division by zero or overflow (bad init, large lr); it "
         "propagates, so find the first layer that produced it and add an eps."),
    14: ("BatchNorm placement",
         "BatchNorm before the activation (as in the paper) or after it (as many find "
         "better); both are in use."),
    15: ("Dropout after conv layers kept small",
         "Dropout after convolutions may hurt; if used, keep p small (0.1-0.2)."),
    16: ("Batch size",
         "Smaller batches may generalise better; try both."),
    17: ("Weights not zero, at the fan-in scale",
         "Weights initialised to zero (or one constant) get identical gradients and "
         "nothing learns; biases may be zero."),
    18: ("Biases present",
         "Without biases every hyperplane passes through the origin; keep bias=True unless "
         "a normalisation layer follows."),
    19: ("Validation and test from one distribution",
         "Validation accuracy far above test accuracy means the validation split comes from "
         "the training distribution and the test split does not."),
    20: ("KL divergence inputs",
         "KL divergence cannot be negative; KLDivLoss wants log-probabilities as input and "
         "probabilities as target."),
    "stuck": ("Loss keeps moving",
              "A loss that stops changing: dead ReLUs, vanishing gradients, a learning rate "
              "far too small, parameters missing from the optimizer, or gradients never "
              "zeroed or applied."),
}

#: checklist keys in order: the twenty points, then "stuck"; extra keys follow
ARTICLE_KEYS: list[int | str] = list(POINTS)


def title(key: int | str) -> str:
    return POINTS[key][0] if key in POINTS else str(key)


def explain(key: int | str) -> str:
    return POINTS[key][1] if key in POINTS else ""
