"""Keep nbdebug's own numeric warnings out of the user's cell.

nbdebug's sinks (live views, checks, renderers) run inside the user's training; a numpy or
matplotlib warning they raise (``invalid value encountered in divide`` on a run that went
to NaN) would print under the user's cell as if their code had caused it. ``quiet()``
silences them for nbdebug's own code only: the user's code never runs inside it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    import numpy as np
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
