"""The registry of toxic types: type name -> :class:`Toxic` subclass.

Built-in types register on first use; plugins call :func:`register_toxic` (a pluggy
hook will call it for them).
"""

from __future__ import annotations

import importlib

from pytest_chaos.toxics._base import Toxic

__all__ = ["get_toxic_class", "register_toxic", "toxic_types"]

_BUILTIN_MODULES = (
    "pytest_chaos.toxics._latency",
    "pytest_chaos.toxics._bandwidth",
    "pytest_chaos.toxics._slow_close",
    "pytest_chaos.toxics._timeout",
    "pytest_chaos.toxics._reset_peer",
    "pytest_chaos.toxics._slicer",
    "pytest_chaos.toxics._limit_data",
    "pytest_chaos.toxics._noop",
    "pytest_chaos.toxics._http_error",
    "pytest_chaos.toxics._http_delay",
    "pytest_chaos.toxics._http_duplicate",
)

_registry: dict[str, type[Toxic]] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def register_toxic(cls: type[Toxic], *, replace: bool = False) -> type[Toxic]:
    """Register a toxic type under ``cls.type_name``; usable as a class decorator.

    Registering a second class under a taken name raises :class:`ValueError` unless
    ``replace`` is true.
    """
    if not (isinstance(cls, type) and issubclass(cls, Toxic)):
        raise TypeError(f"register_toxic() takes a Toxic subclass, got {cls!r}")
    name = cls.type_name
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(
            f"toxic type name {name!r} of {cls.__name__} must be a non-empty identifier "
            "like 'latency'; set the class attribute type_name"
        )
    existing = _registry.get(name)
    if existing is not None and existing is not cls and not replace:
        raise ValueError(
            f"toxic type {name!r} is already registered by {existing.__module__}."
            f"{existing.__qualname__}; pick another type_name or pass replace=True"
        )
    _registry[name] = cls
    return cls


def get_toxic_class(name: str) -> type[Toxic] | None:
    """The class registered under ``name``, or ``None``."""
    _load_builtins()
    return _registry.get(name)


def toxic_types() -> dict[str, type[Toxic]]:
    """A copy of the registry."""
    _load_builtins()
    return dict(_registry)
