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

A via that can tell what it delivered (a Fault with ``stats``, which
``ChaosProxy.http_duplicate`` returns) is read before and after the first delivery: a
copy that never reached the upstream (``http_duplicates_failed``), or no copy at all,
means the duplicate was not tested, which is a CheckError, never a pass.

``effect`` measures the state (``lambda s: len(s["charges"])``) and ``first_effect``
bounds how much the first delivery (its copies included) may change that measure:
exactly (``1``, the default) or as a ``(low, high)`` range. It catches the bug the
replays cannot: a first delivery that already did the work twice.
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


def _enter_via(via: object) -> tuple[Callable[[], None], str, object]:
    """Activate ``via``; return how to undo it, its description and the active object."""
    if via is None:
        return (lambda: None), "", None
    if callable(via) and not hasattr(via, "heal") and not hasattr(via, "__enter__"):
        via = via()
    heal = getattr(via, "heal", None)
    if callable(heal):
        return (lambda: heal()), f"via {via!r}", via
    if isinstance(via, AbstractContextManager) or hasattr(via, "__enter__"):
        cm: Any = via
        cm.__enter__()
        return (lambda: cm.__exit__(None, None, None)), f"via {via!r}", via
    raise CheckError(
        f"{_CHECK}: via={via!r} is not a Fault, a context manager or a callable returning "
        f"one; pass e.g. via=proxy.http_duplicate()"
    )


def _copies(read: Callable[[], Mapping[str, Any]] | None) -> tuple[int, int] | None:
    """(copies delivered, copies lost) so far, if ``via`` can tell."""
    if read is None:
        return None
    try:
        stats = read()
    except Exception as exc:
        raise CheckError(
            f"{_CHECK}: reading the proxy's stats for via= failed: {type(exc).__name__}: "
            f"{exc}; copies cannot be verified"
        ) from exc
    return int(stats.get("http_duplicates_sent", 0)), int(stats.get("http_duplicates_failed", 0))


def _verify_copies(
    before: tuple[int, int] | None, after: tuple[int, int] | None, how: str
) -> dict[str, int]:
    if before is None or after is None:
        return {}
    sent, lost = after[0] - before[0], after[1] - before[1]
    if lost:
        raise CheckError(
            f"{_CHECK}: the replay never reached the upstream: {lost} of {sent + lost} "
            f"cop{'y' if sent + lost == 1 else 'ies'} {how} could not be delivered "
            f"(http_duplicates_failed +{lost}; the proxy's notes say why), so the duplicate "
            f"was not tested; make the upstream reachable on new connections"
        )
    if not sent:
        raise CheckError(
            f"{_CHECK}: the action sent no request that {how} duplicated "
            f"(http_duplicates_sent +0), so the duplicate was not tested; check its method, "
            f"path_prefix and rate, and that the action goes through that proxy"
        )
    return {"copies_delivered": sent}


def _bounds(first_effect: object) -> tuple[float, float]:
    if isinstance(first_effect, tuple) and len(first_effect) == 2:
        low, high = first_effect
    else:
        low = high = first_effect
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CheckError(
                f"{_CHECK}: first_effect={first_effect!r} is not allowed; give the exact "
                f"change of effect(state) the first delivery makes (e.g. 1) or a range (1, 2)"
            )
    assert isinstance(low, int | float) and isinstance(high, int | float)
    if low > high:
        raise CheckError(f"{_CHECK}: first_effect={first_effect!r}: low is above high")
    return float(low), float(high)


def _measure(effect: Callable[[Any], object], snapshot: object, when: str) -> float:
    try:
        value = effect(snapshot)
    except Exception as exc:
        raise CheckError(
            f"{_CHECK}: effect() raised {type(exc).__name__}: {exc} on the state {when}; "
            f"effect must turn a state() snapshot into a number"
        ) from exc
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CheckError(
            f"{_CHECK}: effect() returned {value!r} for the state {when}; it must return a "
            f"number (e.g. lambda s: len(s['charges']))"
        )
    return float(value)


def _num(value: float) -> str:
    return f"{value:g}"


def idempotent(
    action: Callable[[], object],
    *,
    state: Callable[[], object],
    via: object = None,
    times: int = 2,
    effect: Callable[[Any], object] | None = None,
    first_effect: float | tuple[float, float] = 1,
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
    ``via``, whose extra copies may still be in flight, else 0). ``effect`` and
    ``first_effect`` bound the first delivery's own effect (see the module docstring).
    Raises :class:`IdempotencyViolated` showing the difference between the snapshots.
    """
    timeline, finish = bind_context(context, timeline, finish)
    if not callable(action) or not callable(state):
        raise CheckError(
            f"{_CHECK}: action and state must be callables (got {action!r}, {state!r})"
        )
    check_count(_CHECK, "times", times, minimum=2)
    allowed_errors = check_failures(failures, _CHECK) if failures != () else ()
    if effect is not None and not callable(effect):
        raise CheckError(
            f"{_CHECK}: effect={effect!r} must be a callable measuring a state() snapshot"
        )
    low, high = _bounds(first_effect)
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
    undo, how, active = _enter_via(via)
    read = getattr(active, "stats", None)
    read = read if callable(read) else None
    try:
        copies_before = _copies(read)
        perform("first delivery")
        copies_after = _copies(read)
    finally:
        undo()
    copies = _verify_copies(copies_before, copies_after, how)
    if settle is None:
        settle = 0.2 if via is not None else 0.0
    check_positive(_CHECK, "settle", settle, allow_zero=True)
    s1 = _settled(state, "after the first delivery", settle)
    change1 = diff(s0, s1)
    if require_effect and not change1:
        raise CheckError(
            f"{_CHECK}: the action changed nothing visible ({_short(s0)} before and after), "
            f"so duplicates cannot be judged; make state() show the action's effect or "
            f"pass require_effect=False"
        )
    allowed: dict[str, Any] = {"changed_by_duplicates": ""}
    problems: list[str] = []
    first: dict[str, Any] = {}
    if effect is not None:
        m0 = _measure(effect, s0, "before the action")
        m1 = _measure(effect, s1, "after the first delivery")
        delta = m1 - m0
        first = {"first_effect": delta}
        allowed["first_effect"] = [low, high]
        if not low <= delta <= high:
            bound = _num(low) if low == high else f"{_num(low)} to {_num(high)}"
            problems.append(
                f"the first delivery{' ' + how if how else ''} changed "
                f"effect(state) by {_num(delta)} ({_num(m0)} -> {_num(m1)}), "
                f"allowed {bound}"
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
        "effect": change1,
        **first,
        **copies,
        "changed_by_duplicates": change,
        "errors": errors,
    }
    if change:
        problems.append(
            f"{replays} changed the state again: {change} "
            f"(the first delivery changed: {change1 or 'nothing'})"
        )
    if problems:
        message = f"{_CHECK} violated: " + "; ".join(problems)
    else:
        message = f"{replays} left the state as the first delivery did ({change1 or 'no change'})"
        if first:
            message += f"; the first delivery's effect was {_num(first['first_effect'])}"
    result = CheckResult(
        name=_CHECK,
        passed=not problems,
        measured=measured,
        allowed=allowed,
        message=message,
        duration=time.perf_counter() - started,
        target=target,
        violation=IdempotencyViolated,
    )
    finish(result)
    return result
