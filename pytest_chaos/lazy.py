"""Lazy attributes for a package's ``__init__`` (PEP 562), so imports stay cheap.

``import pytest_chaos`` and loading the plugin must not import asyncio, Docker, Allure
or the controller; a package lists where each public name lives and this module
imports it on first use::

    __getattr__, __dir__ = lazy_attributes(__name__, {"Chaos": "pytest_chaos.experiment"}, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, where: Mapping[str, str], public: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``where`` maps a name to the
    module that defines it; a resolved name is cached in the package's namespace."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return list(public)

    return __getattr__, __dir__
