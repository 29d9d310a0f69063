"""nbdebug: a training doctor for PyTorch in Jupyter.

``%load_ext nbdebug`` then ``%%diagnose`` above a training cell; or, in a script,
``with nbdebug.diagnose(): train()``. Importing nbdebug is cheap: torch and ipywidgets
are imported only when a diagnosis starts.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__

__all__ = ["__version__", "diagnose", "last_report", "load_ipython_extension",
           "unload_ipython_extension"]


def diagnose(**kwargs: Any) -> Any:
    """See ``nbdebug.api.diagnose``."""
    import sys

    from .api import diagnose as _diagnose
    if "namespace" not in kwargs:
        frame = sys._getframe(1)
        kwargs["namespace"] = {**frame.f_globals, **frame.f_locals}
    return _diagnose(**kwargs)


def last_report() -> Any:
    """The last Report in this process, or None."""
    from .session import last_report as _last
    return _last()


def load_ipython_extension(ipython: Any) -> None:
    from .frontend import attach
    from .magics import register
    register(ipython)
    attach(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .frontend import detach
    from .magics import unregister
    detach(ipython)
    unregister(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab sidebar lives (``jupyter labextension list``)."""
    return [{"src": "labextension", "dest": "nbdebug-sidebar"}]
