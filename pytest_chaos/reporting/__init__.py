"""Reports of chaos runs: terminal summary, JSON journal, Allure.

The reports are produced by the reporting sub-plugin (``pytest_chaos.reporting._plugin``)
from the per-test ``chaos_record``; nothing here needs to be called by a test. Public
for tools that read the journal:

- :func:`journal_schema`: the JSON Schema (draft 2020-12) of every journal file;
- :data:`JOURNAL_SCHEMA_ID`: the ``"schema"`` value of the files this version writes.

Loaded lazily: importing this package imports nothing but the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_chaos.lazy import lazy_attributes

__all__ = ["JOURNAL_SCHEMA_ID", "ChaosTestResult", "journal_schema"]

_LAZY = {
    "ChaosTestResult": "pytest_chaos.reporting._model",
    "JOURNAL_SCHEMA_ID": "pytest_chaos.reporting._journal",
    "journal_schema": "pytest_chaos.reporting._journal",
}

if TYPE_CHECKING:
    from pytest_chaos.reporting._journal import JOURNAL_SCHEMA_ID, journal_schema
    from pytest_chaos.reporting._model import ChaosTestResult

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
