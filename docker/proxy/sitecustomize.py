"""Backport of a CPython asyncio fix for the Python 3.11 of Debian bookworm (3.11.2).

Before the fix, a selector transport added its reader after ``connection_made`` even
when the protocol had called ``pause_reading()`` there, so bytes could arrive before
the proxy had linked the connection to its upstream. Later 3.11 releases (and 3.12+)
check ``is_reading()`` first; this does the same. Loaded automatically (sitecustomize)
by the proxy image only.
"""

from __future__ import annotations

import sys

if sys.version_info[:2] == (3, 11):
    from asyncio import selector_events

    def _add_reader(self, fd, callback, *args):  # type: ignore[no-untyped-def]
        if not self.is_reading():
            return
        self._loop._add_reader(fd, callback, *args)

    selector_events._SelectorTransport._add_reader = _add_reader  # type: ignore[method-assign]
