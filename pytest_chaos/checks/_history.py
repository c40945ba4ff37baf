"""history: record client writes during faults, then check that none was lost.

Each write is recorded with its outcome:

- ``ack``: the system said it was done; it must be there afterwards;
- ``fail``: the system said it was not done (a *definite* failure, e.g. the connection
  was refused before anything was sent);
- ``unknown``: anything else that went wrong (a timeout, a reset after the request was
  sent): it may or may not have happened.

After heal, :meth:`History.check` reads back what the system holds for every key and
reports acknowledged writes that are missing (*lost*) and values that appear more often
than they were written (*duplicated*), including values nobody wrote. Writes are
modelled as adding a value to a collection per key (a list, a set, table rows), so
give every write a distinct value.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pytest_chaos.checks._common import Finish
from pytest_chaos.checks._context import CheckContext, bind_context, require_healed
from pytest_chaos.checks._errors import HistoryViolated
from pytest_chaos.checks._probe import check_failures
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["History", "Op", "Outcome"]

_CHECK = "history"
Outcome = Literal["ack", "fail", "unknown"]
_OUTCOMES = ("ack", "fail", "unknown")
_LIST = 8  # values listed per category in a message


@dataclass(frozen=True)
class Op:
    """One recorded client operation."""

    kind: str
    key: Hashable
    value: Hashable
    outcome: Outcome
    t: float = 0.0
    latency: float = 0.0
    error: str = ""


def _by_key(pairs: list[tuple[Any, Any]], *, raw: bool = False) -> str:
    """``key 'k': 1, 2, 3 and 4 more`` for a message, one group per key."""
    groups: dict[Any, list[str]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(str(value) if raw else repr(value))
    parts = []
    for key, values in groups.items():
        more = f" and {len(values) - _LIST} more" if len(values) > _LIST else ""
        parts.append(f"key {key!r}: {', '.join(values[:_LIST])}{more}")
    return "; ".join(parts)


class History:
    """A thread-safe recorder of client writes and their outcomes.

    ``definite_failures`` are the exceptions that prove a write did *not* happen
    (recorded ``fail``); any other ``Exception`` is recorded ``unknown``.
    """

    def __init__(
        self,
        *,
        definite_failures: object = (ConnectionRefusedError,),
        timeline: Timeline | None = None,
        finish: Finish | None = None,
        label: str = "history:write",
        context: CheckContext | None = None,
    ) -> None:
        self.definite_failures = check_failures(definite_failures, _CHECK)
        self._context = context
        timeline, finish = bind_context(context, timeline, finish)
        self.timeline = timeline
        self._finish = finish
        self.label = label
        self._lock = threading.Lock()
        self._ops: list[Op] = []

    @property
    def ops(self) -> list[Op]:
        """A copy of the recorded operations, in the order they completed."""
        with self._lock:
            return list(self._ops)

    def record(
        self,
        key: Hashable,
        value: Hashable,
        outcome: Outcome,
        *,
        kind: str = "write",
        error: str = "",
    ) -> Op:
        """Record an operation whose outcome you determined yourself."""
        if outcome not in _OUTCOMES:
            raise CheckError(
                f"{_CHECK}: outcome={outcome!r} is not one of {list(_OUTCOMES)}; use 'ack' "
                f"when the system confirmed, 'fail' when it surely did not happen, "
                f"'unknown' otherwise"
            )
        t = self.timeline.now() if self.timeline is not None else time.monotonic()
        op = Op(kind, key, value, outcome, t, 0.0, error)
        with self._lock:
            self._ops.append(op)
        return op

    def write(self, key: Hashable, value: Hashable, fn: Callable[[], object]) -> Op:
        """Call ``fn`` (the client's write of ``value`` under ``key``) and record it.

        Returning normally is ``ack`` (returning ``False`` is ``fail``); raising one of
        ``definite_failures`` is ``fail``; raising any other ``Exception`` is
        ``unknown``. The exception is swallowed: failures are expected during faults.
        """
        t = self.timeline.now() if self.timeline is not None else time.monotonic()
        start = time.perf_counter()
        error = ""
        outcome: Outcome
        try:
            result = fn()
        except self.definite_failures as exc:
            outcome, error = "fail", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            outcome, error = "unknown", f"{type(exc).__name__}: {exc}"
        else:
            outcome = "fail" if result is False else "ack"
        latency = time.perf_counter() - start
        op = Op("write", key, value, outcome, t, latency, error[:200])
        with self._lock:
            self._ops.append(op)
        if self.timeline is not None:
            self.timeline.sample(self.label, t=t, latency=latency, ok=outcome == "ack")
        return op

    def check(
        self,
        read: Callable[[Any], Iterable[Hashable]] | Mapping[Any, Iterable[Hashable]],
        *,
        target: str = "",
    ) -> CheckResult:
        """Read back every key and judge: no acknowledged write lost, none duplicated.

        ``read(key)`` returns the values the system holds under ``key`` (or pass a
        mapping key -> values). Raises :class:`HistoryViolated` listing lost and
        duplicated writes; returns the result otherwise. In a test (``chaos.history()``)
        it must run after every fault is healed (a CheckError otherwise).
        """
        require_healed(self._context, "history.check")
        started = time.perf_counter()
        ops = [op for op in self.ops if op.kind == "write"]
        if not ops:
            raise CheckError(f"{_CHECK}: no write was recorded; record writes with write()")
        performed: Counter[tuple[Hashable, Hashable]] = Counter()
        acked: Counter[tuple[Hashable, Hashable]] = Counter()
        keys: list[Hashable] = []
        for op in ops:
            performed[(op.key, op.value)] += 1
            if op.outcome == "ack":
                acked[(op.key, op.value)] += 1
            if op.key not in keys:
                keys.append(op.key)
        present: Counter[tuple[Hashable, Hashable]] = Counter()
        for key in keys:
            try:
                values = read.get(key, ()) if isinstance(read, Mapping) else read(key)
                for value in values:
                    present[(key, value)] += 1
            except Exception as exc:
                raise CheckError(
                    f"{_CHECK}: reading key {key!r} back raised {type(exc).__name__}: {exc}; "
                    f"check() runs after heal, when the system should answer"
                ) from exc
        # in the order they were written, which is the order a reader thinks in
        lost = [kv for kv in acked if present[kv] == 0]
        duplicated = [
            (kv, present[kv], performed[kv]) for kv in present if present[kv] > performed[kv]
        ]
        unknown_present = sum(
            1 for op in ops if op.outcome == "unknown" and present[(op.key, op.value)]
        )
        phantom = sorted(
            (
                kv
                for kv in performed
                if present[kv]
                and not acked[kv]
                and all(o.outcome == "fail" for o in ops if (o.key, o.value) == kv)
            ),
            key=repr,
        )
        outcomes = Counter(op.outcome for op in ops)
        measured: dict[str, Any] = {
            "writes": len(ops),
            "ack": outcomes["ack"],
            "fail": outcomes["fail"],
            "unknown": outcomes["unknown"],
            "unknown_present": unknown_present,
            "lost": [[repr(k), repr(v)] for k, v in lost],
            "duplicated": [[repr(k), repr(v), n, p] for (k, v), n, p in duplicated],
            "failed_but_present": [[repr(k), repr(v)] for k, v in phantom],
        }
        summary = (
            f"{len(ops)} writes: {outcomes['ack']} ack, {outcomes['fail']} fail, "
            f"{outcomes['unknown']} unknown ({unknown_present} of those present)"
        )
        problems = []
        if lost:
            problems.append(
                f"{len(lost)} of {len(acked)} acknowledged writes lost ({_by_key(lost)})"
            )
        if duplicated:
            shown = [((k, f"{v!r} present {n}x, written {p}x")) for (k, v), n, p in duplicated]
            problems.append(f"{len(duplicated)} values duplicated ({_by_key(shown, raw=True)})")
        if problems:
            message = f"{_CHECK} violated: {'; '.join(problems)}; {summary}"
        else:
            message = f"no acknowledged write lost, none duplicated; {summary}"
        result = CheckResult(
            name=_CHECK,
            passed=not problems,
            measured=measured,
            allowed={"lost": 0, "duplicated": 0},
            message=message,
            duration=time.perf_counter() - started,
            target=target,
            violation=HistoryViolated,
        )
        self._finish(result)
        return result

    def __repr__(self) -> str:
        outcomes = Counter(op.outcome for op in self.ops)
        return (
            f"<History writes={sum(outcomes.values())} ack={outcomes['ack']} "
            f"fail={outcomes['fail']} unknown={outcomes['unknown']}>"
        )
