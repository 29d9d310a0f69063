"""The kernel side of the JupyterLab sidebar (``labextension/``): comms, protocol, hooks.

``attach(shell)`` is called by ``%load_ext nbdebug``. Outside a Jupyter kernel (plain
IPython, scripts) it does nothing. In a front end without the extension (classic views,
VS Code) the front end closes the data comm and the kernel just forgets it.
"""

from __future__ import annotations

import logging
from typing import Any

from .bridge import Bridge
from .protocol import CONTROL_TARGET, DATA_TARGET, PROTOCOL_VERSION

__all__ = ["Bridge", "PROTOCOL_VERSION", "attach", "detach"]

log = logging.getLogger("nbdebug.frontend")
_BRIDGES: dict[int, Bridge] = {}
_HANDLERS: dict[int, logging.Handler] = {}


class _KernelLog(logging.Handler):
    """Hands nbdebug's sidebar records to the kernel's own log (the Jupyter server's
    console). Without a handler, logging's last resort prints them to ``sys.stderr``,
    which in a kernel is the running cell's output: a stale comm or a rejected control
    message would put warnings and tracebacks under the user's training."""

    def __init__(self, target: logging.Logger) -> None:
        super().__init__()
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.target.handle(record)
        except Exception:
            pass


def attach(shell: Any) -> Bridge | None:
    """Register the control target, announce nbdebug to the sidebar and hook the Session."""
    if id(shell) in _BRIDGES or getattr(shell, "kernel", None) is None:
        return _BRIDGES.get(id(shell))
    if id(shell) not in _HANDLERS:
        target = getattr(shell.kernel, "log", None)
        if isinstance(target, logging.LoggerAdapter):
            target = target.logger
        handler = _KernelLog(target) if isinstance(target, logging.Logger) else \
            logging.NullHandler()
        log.addHandler(handler)
        _HANDLERS[id(shell)] = handler
    try:
        import comm

        from .._version import __version__
        from ..session import WATCHERS

        def open_data(data: dict) -> Any:
            return comm.create_comm(target_name=DATA_TARGET, data=data)

        bridge = Bridge(open_data, __version__, cell_of_request=lambda: _cell_of(shell))
        comm.get_comm_manager().register_target(CONTROL_TARGET, bridge.control_opened)
        WATCHERS.append(bridge)
        _BRIDGES[id(shell)] = bridge
        bridge.announce()
        return bridge
    except Exception:
        log.warning("nbdebug: the JupyterLab sidebar is not available here", exc_info=True)
        return None


def detach(shell: Any) -> None:
    handler = _HANDLERS.pop(id(shell), None)
    if handler is not None:
        log.removeHandler(handler)
    bridge = _BRIDGES.pop(id(shell), None)
    if bridge is None:
        return
    try:
        import comm

        from ..session import WATCHERS
        if bridge in WATCHERS:
            WATCHERS.remove(bridge)
        comm.get_comm_manager().unregister_target(CONTROL_TARGET, bridge.control_opened)
    except Exception:
        log.warning("nbdebug: could not detach the sidebar", exc_info=True)
    bridge.close()


def _cell_of(shell: Any) -> tuple[str | None, int | None]:
    """The JupyterLab cell id of the running execute request (its metadata), and In[n]."""
    parent: Any = None
    kernel: Any = getattr(shell, "kernel", None)
    try:
        parent = kernel.get_parent("shell")
    except Exception:
        parent = getattr(shell, "parent_header", None)
    cell = None
    if isinstance(parent, dict):
        meta = parent.get("metadata") or {}
        value = meta.get("cellId") if isinstance(meta, dict) else None
        cell = value if isinstance(value, str) and len(value) < 200 else None
    count = getattr(shell, "execution_count", None)
    return cell, count if isinstance(count, int) else None
