"""Rollback: the undo stack of one test and the end-of-session rollback.

Every change to a proxy or container pushes its inverse *before* it is applied, so a
change that fails halfway is still undone. Teardown drains the stack in reverse; the
end-of-session rollback drains whatever a test could not (an interrupted run).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SessionRollback", "UndoEntry", "UndoStack"]


@dataclass(eq=False)
class UndoEntry:
    """One inverse action; it runs at most once."""

    label: str
    action: Callable[[], None]
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self) -> bool:
        """Run the action unless it already ran; True if this call ran it.

        The entry counts as done even if the action raised: a failed undo is reported,
        not retried forever.
        """
        with self.lock:
            if self.done:
                return False
            self.done = True
        self.action()
        return True


class UndoStack:
    """Inverse actions in the order they were pushed; drained newest first."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._entries: list[UndoEntry] = []
        self._lock = threading.Lock()

    def push(self, label: str, action: Callable[[], None]) -> UndoEntry:
        """Push an inverse action and return its entry (run it early with ``.run()``)."""
        entry = UndoEntry(label, action)
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def pending(self) -> list[UndoEntry]:
        """Entries that have not run yet, oldest first."""
        with self._lock:
            return [e for e in self._entries if not e.done]

    def drain(self) -> list[tuple[str, BaseException]]:
        """Run every pending entry, newest first; return ``(label, error)`` for failures.

        An error does not stop the drain: everything else is still undone.
        """
        errors: list[tuple[str, BaseException]] = []
        while True:
            with self._lock:
                pending = [e for e in self._entries if not e.done]
            if not pending:
                return errors
            entry = pending[-1]
            try:
                entry.run()
            except Exception as exc:
                errors.append((entry.label, exc))

    def __repr__(self) -> str:
        return f"<UndoStack {self.owner!r} pending={len(self.pending)}>"


class SessionRollback:
    """The undo stacks still open in this process, drained at session end.

    A stack may come with a ``heal`` callable that runs first (the controller heals its
    faults ``by="session"`` so the timeline and the hooks see it); the stack's own
    drain then undoes whatever is left, proxies included.
    """

    def __init__(self) -> None:
        self._stacks: dict[int, tuple[UndoStack, Callable[[], object] | None]] = {}
        self._lock = threading.Lock()

    def add(self, stack: UndoStack, heal: Callable[[], object] | None = None) -> None:
        """Track a stack until :meth:`discard`."""
        with self._lock:
            self._stacks[id(stack)] = (stack, heal)

    def discard(self, stack: UndoStack) -> None:
        """Stop tracking a stack (its test tore down)."""
        with self._lock:
            self._stacks.pop(id(stack), None)

    def drain(self) -> list[tuple[str, str, BaseException]]:
        """Drain every tracked stack; return ``(owner, label, error)`` for failures."""
        with self._lock:
            stacks, self._stacks = list(self._stacks.values()), {}
        failures: list[tuple[str, str, BaseException]] = []
        for stack, heal in stacks:
            if heal is not None:
                try:
                    heal()
                except Exception as exc:
                    failures.append((stack.owner, "healing", exc))
            failures.extend((stack.owner, label, exc) for label, exc in stack.drain())
        return failures

    def __len__(self) -> int:
        return len(self._stacks)

    def __repr__(self) -> str:
        return f"<SessionRollback open_stacks={len(self._stacks)}>"
