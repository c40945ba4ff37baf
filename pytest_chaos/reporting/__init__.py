"""Reports of chaos runs: terminal summary, JSON journal, Allure.

The reports are produced by the reporting sub-plugin (``pytest_chaos.reporting._plugin``)
from the per-test ``chaos_record``; nothing here needs to be called by a test. Public
for tools that read the journal:

- :func:`journal_schema`: the JSON Schema (draft 2020-12) of every journal file;
- :data:`JOURNAL_SCHEMA_ID`: the ``"schema"`` value of the files this version writes.

Loaded lazily: importing this package imports nothing but the standard library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["JOURNAL_SCHEMA_ID", "journal_schema"]

if TYPE_CHECKING:
    from pytest_chaos.reporting._journal import SCHEMA_ID as JOURNAL_SCHEMA_ID
    from pytest_chaos.reporting._journal import journal_schema


def __getattr__(name: str) -> Any:
    if name == "journal_schema":
        from pytest_chaos.reporting._journal import journal_schema

        return journal_schema
    if name == "JOURNAL_SCHEMA_ID":
        from pytest_chaos.reporting._journal import SCHEMA_ID

        return SCHEMA_ID
    raise AttributeError(f"module 'pytest_chaos.reporting' has no attribute {name!r}")
