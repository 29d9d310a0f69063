"""Pre-flight: the experiments an expert runs before trusting a long training.

At the first optimizer step (``--preflight``) nbdebug runs, on copies, the loss at init
against its expected value, overfitting one batch, an input-independent baseline, a
learning-rate range test and a label-permuted control; ``nbdebug.checks.preflight`` turns
the results into findings. The real training then continues bitwise as without them.
"""

from .runner import Preflight

__all__ = ["Preflight"]
