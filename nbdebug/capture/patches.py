"""One owner for every hook handle and monkey-patch of a session.

Each registration is kept here and undone by ``remove_all``, which is idempotent and
never raises: it runs in ``finally`` however the cell ends.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig
import traceback
from typing import Any, Callable


class Patches:
    def __init__(self) -> None:
        self._handles: list[Any] = []
        self._patches: list[tuple[Any, str, Any, bool]] = []
        self._items: list[tuple[dict, Any, Any, Any]] = []
        #: patches taken off on steady steps: (owner or mapping, name, original, had, value)
        self._switchable: list[tuple[Any, Any, Any, bool, Any]] = []
        self.steady = False
        #: the traceback of each error ``remove_all`` returned, by its message
        self.tracebacks: dict[str, str] = {}

    def handle(self, h: Any) -> Any:
        self._handles.append(h)
        return h

    def remove(self, h: Any) -> None:
        """Remove one hook handle now (hooks swapped while the cell runs)."""
        for i, mine in enumerate(self._handles):
            if mine is h:
                del self._handles[i]
                break
        h.remove()

    def patch(self, owner: Any, name: str, value: Any) -> None:
        had = name in vars(owner)
        self._patches.append((owner, name, vars(owner).get(name), had))
        setattr(owner, name, value)

    def wrap(self, owner: Any, name: str, guard: Any, before: Any = None, after: Any = None,
             original: Any = None, reentrant: bool = True, steady: bool = False,
             scope: str | None = None) -> Any:
        """Replace ``owner.name`` by ``guard.wrap`` of it (or of ``original``) until
        ``remove_all``: ``before(args, kwargs)`` and ``after(args, kwargs, result)`` run
        around the unchanged call, fault-isolated. Returns the wrapper. Unless ``steady``,
        the wrapper is taken off on steady steps (``set_steady``)."""
        wrapper = guard.wrap(original if original is not None else getattr(owner, name),
                             name, before=before, after=after, reentrant=reentrant,
                             scope=scope)
        had = name in vars(owner)
        self.patch(owner, name, wrapper)
        if not steady:
            self._switchable.append((owner, name, self._patches[-1][2], had, wrapper))
        return wrapper

    def undo(self, owner: Any, name: str, wrapper: Any) -> None:
        """Take the wrap ``wrapper`` of ``owner.name`` off now (a patch needed only before
        training): the original goes back unless the user has rebound the name
        meanwhile. Never raises."""
        self._switchable = [s for s in self._switchable if s[4] is not wrapper]
        for i in range(len(self._patches) - 1, -1, -1):
            mine, key, original, had = self._patches[i]
            if mine is not owner or key != name:
                continue
            del self._patches[i]
            try:
                now = vars(owner).get(name)
                if now is wrapper or now is (original if had else None):
                    if had:
                        setattr(owner, name, original)
                    elif name in vars(owner):
                        delattr(owner, name)
            except Exception:
                pass
            return

    def patch_item(self, mapping: dict, key: Any, value: Any, steady: bool = False) -> None:
        """Set ``mapping[key]`` until ``remove_all``, which restores it unless the user has
        rebound the key meanwhile. Unless ``steady``, it is restored on steady steps."""
        self._items.append((mapping, key, mapping[key], value))
        if not steady:
            self._switchable.append((mapping, key, mapping[key], True, value))
        mapping[key] = value

    def set_steady(self, steady: bool) -> None:
        """Take the switchable patches off (steady steps) or put them back. A name the
        user has rebound meanwhile is left as the user set it."""
        if steady == self.steady:
            return
        self.steady = steady
        for target, name, original, had, value in self._switchable:
            if isinstance(target, dict):
                now, want = target.get(name), (original if steady else value)
                if now is (value if steady else original):
                    target[name] = want
                continue
            now = vars(target).get(name)
            if steady and now is value:
                if had:
                    setattr(target, name, original)
                else:
                    delattr(target, name)
            elif not steady and now is (original if had else None):
                setattr(target, name, value)

    @property
    def active(self) -> int:
        return len(self._handles) + len(self._patches) + len(self._items)

    def remove_all(self) -> list[str]:
        """Undo everything in reverse order; returns the errors met (never raises)."""
        errors: list[str] = []
        self._switchable = []
        self.steady = False
        while self._items:
            mapping, key, original, value = self._items.pop()
            try:
                if mapping.get(key) is value:
                    mapping[key] = original
            except Exception as exc:
                errors.append(f"restoring {key!r}: {exc}")
                self.tracebacks[errors[-1]] = traceback.format_exc()
        while self._patches:
            owner, name, original, had = self._patches.pop()
            try:
                if had:
                    setattr(owner, name, original)
                elif name in vars(owner):
                    delattr(owner, name)
            except Exception as exc:
                errors.append(f"restoring {owner!r}.{name}: {exc}")
                self.tracebacks[errors[-1]] = traceback.format_exc()
        while self._handles:
            h = self._handles.pop()
            try:
                h.remove()
            except Exception as exc:
                errors.append(f"removing hook {h!r}: {exc}")
                self.tracebacks[errors[-1]] = traceback.format_exc()
        return errors


_USER_MODULES: dict[str, tuple[Any, bool]] = {}   # module name -> (module, the user's own)
#: the last answer, and the number of modules loaded when it was given
_LAST: list[Any] = [-1, []]


def user_namespaces() -> list[dict[str, Any]]:
    """The globals of the user's own imported modules: those loaded from a file outside
    the interpreter's installation and its site-packages (a project's ``helpers.py``, say),
    nbdebug excluded. (Each module is judged once, when first seen; while no module was
    imported since the last call, and the user's are still the ones loaded, the last answer
    stands.)"""
    count, (last_count, last) = len(sys.modules), _LAST
    if count == last_count and all(sys.modules.get(name) is module for name, module in last):
        return [vars(module) for _, module in last]
    prefixes: tuple[str, ...] | None = None
    out = []
    mine_now = []
    for name, module in list(sys.modules.items()):
        known = _USER_MODULES.get(name)
        if known is None or known[0] is not module:
            if prefixes is None:
                prefixes = _installed_prefixes()
            path = getattr(module, "__file__", None)
            mine = not (not isinstance(path, str) or not path.endswith(".py")
                        or name == "__main__" or not os.path.isabs(path)
                        or path.startswith(prefixes) or "site-packages" in path
                        or "dist-packages" in path)
            known = _USER_MODULES[name] = (module, mine)
        if known[1]:
            out.append(vars(module))
            mine_now.append((name, module))
    _LAST[:] = [count, mine_now]
    return out


def user_file(path: str) -> bool:
    """Whether ``path`` is a source file of the user's own: it exists, and lies outside the
    interpreter's installation, its site-packages and nbdebug."""
    path = os.path.abspath(path)
    return (os.path.isfile(path) and not path.startswith(_installed_prefixes())
            and "site-packages" not in path and "dist-packages" not in path)


_PREFIXES: tuple[str, ...] = ()


def _installed_prefixes() -> tuple[str, ...]:
    """Where the interpreter, its libraries and nbdebug itself live (computed once)."""
    global _PREFIXES
    if not _PREFIXES:
        roots = {sys.prefix, sys.base_prefix, sys.exec_prefix,
                 *sysconfig.get_paths().values(), *site.getsitepackages(),
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}   # nbdebug
        try:
            roots.add(site.getusersitepackages())
        except Exception:
            pass
        _PREFIXES = tuple(os.path.join(os.path.abspath(r), "") for r in roots if r)
    return _PREFIXES


class CopiedInert:
    """A hook object on the user's own module: a copy of the model made while it trains
    (``copy.deepcopy`` of the best model, ``torch.save(model)``) gets a hook that does
    nothing, so copying and pickling work as they do without nbdebug."""

    def __deepcopy__(self, memo: dict) -> Callable[..., None]:
        return _inert_hook

    def __reduce__(self) -> tuple[Any, ...]:
        return (_inert, ())


class ModuleHook(CopiedInert):
    """A hook on the user's own module (full and lean steps; ``steady.Span`` is the
    steady steps' own)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> None:
        return self.fn(*args)


def _inert_hook(*args: Any) -> None:
    return None


def _inert() -> Callable[..., None]:
    return _inert_hook
