"""The backend registry, the built-in backends and the end-of-session rollback."""

from __future__ import annotations

from pytest_chaos.experiment._rollback import SessionRollback, UndoStack


def _divide_by_zero() -> None:
    1 / 0  # noqa: B018


def test_backstop_drains_every_open_stack_newest_first() -> None:
    done: list[str] = []
    backstop = SessionRollback()
    stack = UndoStack("t.py::test")
    stack.push("proxy", lambda: done.append("proxy"))
    stack.push("fault", lambda: done.append("fault"))
    broken = UndoStack("t.py::other")
    broken.push("bad", _divide_by_zero)
    backstop.add(stack, heal=lambda: done.append("heal"))
    backstop.add(broken)
    failures = backstop.drain()
    assert done == ["heal", "fault", "proxy"]
    assert [(owner, label) for owner, label, _ in failures] == [("t.py::other", "bad")]
    assert len(backstop) == 0 and stack.pending == []
