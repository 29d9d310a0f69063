"""The names of the timelines and of the ``Observations.extra`` entries, declared once.

Capture writes them, the checks and the views read them; a name is spelled here only.
Keys ending in "/" are prefixes completed by a layer, loader or optimizer name.
"""

from __future__ import annotations

# -- timelines (Observations.timelines, report["timelines"]) --------------------------
LOSS = "loss"                    # the training loss per step
GRAD_NORM = "grad_norm"          # per-parameter gradient norms (columns: parameter names)
UPDATE_RATIO = "update_ratio"    # per-parameter |update| / |weight| on sampled steps
OUTPUT = "output"                # the model output's summary on sampled steps
ACT = "act/"                     # + layer: a leaf's output summary on sampled steps
TRAIN_ACC = "train_acc"          # accuracy of sampled training batches
#: samples a point of the training accuracy covers at least (its last may cover fewer)
ACC_SAMPLES = 32
LABELS = "labels"                # per-batch label histograms (columns: classes)
LR = "lr/"                       # + optimizer index: each group's learning rate
STALE_GRAD = "stale_grad"        # gradient norm left over when a backward starts
DEAD_UNITS = "dead_units"        # share of never-active units per ReLU layer and window
SATURATED = "saturated/"         # + layer: share of saturated sigmoid/tanh outputs
CLIP_TOTAL_NORM = "clip_total_norm"   # the norm clip_grad_norm_ saw before clipping
EVAL = "eval/"                   # + loader: held-out accuracy and loss per round
HELDOUT_MSE = "heldout_mse/"     # + loader: held-out squared error and its baseline

# -- Observations.extra --------------------------------------------------------------
INPUTS = "inputs"                # model -> per-feature summary of its training inputs
LOSS_GRAPH = "loss_graph"        # the autograd ops that fed the first backward
OVERHEAD = "overhead"            # nbdebug's share of the run so far
NBDEBUG_SECONDS = "nbdebug_seconds"   # time inside nbdebug's hook bodies
EVAL_RUNNING = "eval_running"    # held-out rounds still open (the live plots)
DISTRIBUTED = "distributed"      # the merged ranks' facts (torchrun)
WORKER_RNG = "worker_rng"        # loader -> generators its workers inherit in one state
EVAL_DROPOUT = "eval_dropout"    # dropout calls active while the model was in eval mode
EVAL_DETERMINISM = "eval_determinism"   # an eval forward run twice on one batch: per model
INIT_OVERWRITTEN = "init_overwritten"   # a targeted init that a later, broader one redrew
FREEZE = "freeze"                # parameters frozen yet changed, frozen late, unfrozen
