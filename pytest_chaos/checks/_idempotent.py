"""idempotent: a duplicated action must not change the observable state again.

The check takes three snapshots with the user's ``state()`` callable::

    s0 = state()
    action()               # the first delivery; duplicated by ``via`` when given
    s1 = state()
    action() x (times-1)   # replays: the same request, message or idempotency key
    s2 = state()

and requires ``s2 == s1``. ``via`` is a duplicator active during the first delivery
(an ``http_duplicate()`` Fault, any context manager, or a zero-argument callable that
returns one); it is healed (or exited) right after it. ``s1 == s0`` means the action
had no visible effect, so nothing could be judged: that is a CheckError unless
``require_effect=False``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import IdempotencyViolated
from pytest_chaos.checks._probe import check_count, check_failures, check_positive, probe_name
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["diff", "idempotent"]

_CHECK = "idempotent"
_MAX = 10  # items listed in a difference


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def diff(before: object, after: object) -> str:
    """A readable difference between two state snapshots ("" when equal)."""
    if before == after:
        return ""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        parts = []
        for key in after.keys() - before.keys():
            parts.append(f"+ {key!r}: {_short(after[key])}")
        for key in before.keys() - after.keys():
            parts.append(f"- {key!r}: {_short(before[key])}")
        for key in before.keys() & after.keys():
            if before[key] != after[key]:
                parts.append(f"~ {key!r}: {_short(before[key])} -> {_short(after[key])}")
        parts.sort()
        more = f" (+{len(parts) - _MAX} more)" if len(parts) > _MAX else ""
        return "; ".join(parts[:_MAX]) + more
    if (
        isinstance(before, Iterable)
        and isinstance(after, Iterable)
        and not isinstance(before, str | bytes)
        and not isinstance(after, str | bytes)
    ):
        b = Counter(_short(x) for x in before)
        a = Counter(_short(x) for x in after)
        parts = [f"+ {k}" + (f" x{n}" if n > 1 else "") for k, n in (a - b).items()]
        parts += [f"- {k}" + (f" x{n}" if n > 1 else "") for k, n in (b - a).items()]
        if parts:
            more = f" (+{len(parts) - _MAX} more)" if len(parts) > _MAX else ""
            return "; ".join(parts[:_MAX]) + more
        return f"same items, different order: {_short(before)} -> {_short(after)}"
    return f"{_short(before)} -> {_short(after)}"


def _snapshot(state: Callable[[], object], when: str) -> object:
    try:
        return state()
    except Exception as exc:
        raise CheckError(
            f"{_CHECK}: state() raised {type(exc).__name__}: {exc} while taking the "
            f"snapshot {when}; state must read the system's observable state"
        ) from exc


def _settled(state: Callable[[], object], when: str, settle: float) -> object:
    """A snapshot that stayed the same for ``settle`` seconds (duplicates delivered by a
    proxy may still be in flight when the client already has its answer)."""
    snap = _snapshot(state, when)
    for _ in range(20):
        if settle <= 0:
            break
        time.sleep(settle)
        again = _snapshot(state, when)
        if again == snap:
            break
        snap = again
    return snap


def _enter_via(via: object) -> tuple[Callable[[], None], str]:
    """Activate ``via`` and return how to undo it, and its description."""
    if via is None:
        return (lambda: None), ""
    if callable(via) and not hasattr(via, "heal") and not hasattr(via, "__enter__"):
        via = via()
    heal = getattr(via, "heal", None)
    if callable(heal):
        return (lambda: heal()), f"via {via!r}"
    if isinstance(via, AbstractContextManager) or hasattr(via, "__enter__"):
        cm: Any = via
        cm.__enter__()
        return (lambda: cm.__exit__(None, None, None)), f"via {via!r}"
    raise CheckError(
        f"{_CHECK}: via={via!r} is not a Fault, a context manager or a callable returning "
        f"one; pass e.g. via=proxy.http_duplicate()"
    )


def idempotent(
    action: Callable[[], object],
    *,
    state: Callable[[], object],
    via: object = None,
    times: int = 2,
    failures: object = (),
    require_effect: bool = True,
    settle: float | None = None,
    target: str = "",
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    context: CheckContext | None = None,
) -> CheckResult:
    """Perform ``action`` and its duplicates; the state must not change after the first.

    See the module docstring for the exact sequence. ``failures`` lists exceptions
    that an action may raise without breaking the check (a duplicate rejected with an
    error is fine, as long as the state does not change). Each snapshot after an action
    is taken once the state stayed the same for ``settle`` seconds (default 0.2 with
    ``via``, whose extra copies may still be in flight, else 0). Raises
    :class:`IdempotencyViolated` showing the difference between the snapshots.
    """
    timeline, finish = bind_context(context, timeline, finish)
    if not callable(action) or not callable(state):
        raise CheckError(
            f"{_CHECK}: action and state must be callables (got {action!r}, {state!r})"
        )
    check_count(_CHECK, "times", times, minimum=2)
    allowed_errors = check_failures(failures, _CHECK) if failures != () else ()
    errors: list[str] = []

    def perform(what: str) -> None:
        t = timeline.now() if timeline is not None else 0.0
        start = time.perf_counter()
        ok = True
        try:
            action()
        except allowed_errors as exc:
            ok = False
            errors.append(f"{what}: {type(exc).__name__}: {exc}")
        except Exception as exc:
            raise CheckError(
                f"{_CHECK}: the action {probe_name(action)} raised {type(exc).__name__}: "
                f"{exc} during the {what}; add it to failures=... if a rejected "
                f"duplicate may raise it"
            ) from exc
        if timeline is not None:
            timeline.sample(
                f"{_CHECK}:{probe_name(action)}", t=t, latency=time.perf_counter() - start, ok=ok
            )

    started = time.perf_counter()
    s0 = _snapshot(state, "before the action")
    undo, how = _enter_via(via)
    try:
        perform("first delivery")
    finally:
        undo()
    if settle is None:
        settle = 0.2 if via is not None else 0.0
    check_positive(_CHECK, "settle", settle, allow_zero=True)
    s1 = _settled(state, "after the first delivery", settle)
    effect = diff(s0, s1)
    if require_effect and not effect:
        raise CheckError(
            f"{_CHECK}: the action changed nothing visible ({_short(s0)} before and after), "
            f"so duplicates cannot be judged; make state() show the action's effect or "
            f"pass require_effect=False"
        )
    for _ in range(times - 1):
        perform("replay")
    s2 = _settled(state, "after the replays", settle)
    change = diff(s1, s2)
    replays = f"{times - 1} replay(s) of the action" + (
        f" after a first delivery {how}" if how else ""
    )
    measured: dict[str, Any] = {
        "deliveries": times,
        "effect": effect,
        "changed_by_duplicates": change,
        "errors": errors,
    }
    if change:
        message = (
            f"{_CHECK} violated: {replays} changed the state again: {change} "
            f"(the first delivery changed: {effect or 'nothing'})"
        )
    else:
        message = f"{replays} left the state as the first delivery did ({effect or 'no change'})"
    result = CheckResult(
        name=_CHECK,
        passed=not change,
        measured=measured,
        allowed={"changed_by_duplicates": ""},
        message=message,
        duration=time.perf_counter() - started,
        target=target,
        violation=IdempotencyViolated,
    )
    finish(result)
    return result
