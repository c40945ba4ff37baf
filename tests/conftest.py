"""Shared test setup.

Every module of the package is imported here, at collection, once per process. pytester's
in-process runs restore ``sys.modules`` afterwards, dropping whatever they imported first;
a module imported again later is a new object with new classes, so an embedded server
started before would stop recognising its own exceptions (an ``ApiError`` raised by the
new ``_body`` is not the ``ApiError`` the old ``_api`` catches: a 500 instead of a 400).
Importing everything up front keeps one copy of each module for the whole session.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest_chaos

pytest_plugins = ["pytester"]

for _module in pkgutil.walk_packages(pytest_chaos.__path__, "pytest_chaos."):
    if not _module.name.endswith("__main__"):
        importlib.import_module(_module.name)
