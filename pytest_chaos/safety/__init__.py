"""Safety: blast radius, the safety timer, rollback and names on shared servers.

- :mod:`._radius`: the checks every injection passes before anything is applied.
- :mod:`._rollback`: the undo stack drained at teardown and the session backstop.
- :mod:`._timer`: heals a fault older than ``max_fault_seconds``.
- :mod:`._names`: run ids and server-side names, and which leftovers are safe to remove.
"""

from __future__ import annotations
