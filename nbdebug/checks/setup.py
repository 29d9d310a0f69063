"""Former home of the set-up checks; they now live in data.py, model.py and optimizer.py.

Kept so that ``from nbdebug.checks.setup import ...`` keeps working.
"""

from .data import GROUPED_ENTROPY_RATIO, not_shuffled  # noqa: F401
from .mixing import MIN_LABEL_BATCHES, batch_mixing  # noqa: F401
from .model import CONSTANT_SPREAD, zero_init  # noqa: F401
from .optimizer import sgd_without_momentum  # noqa: F401
