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
give every write a distinct value. A value the server assigns (an order id in a 201
body) is recorded from the write's return: ``write(key, fn)`` with ``fn`` returning it.

Reads may lag behind acknowledgements (replication, a queue, a cache refresh):
``check(read, settle=S)`` re-reads until the verdict stays the same for ``S`` seconds
(the way ``idempotent(settle=...)`` waits for a stable state), instead of a guessed sleep.
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
from pytest_chaos.checks._probe import check_failures, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["History", "Op", "Outcome"]

_CHECK = "history"
Outcome = Literal["ack", "fail", "unknown"]
_OUTCOMES = ("ack", "fail", "unknown")
_LIST = 8  # values listed per category in a message
_SETTLE_ROUNDS = 20  # re-reads at most, like idempotent's settle


class _FromReturn:
    """The default of ``History.write(value=...)``: take the value from ``fn``'s return."""

    def __repr__(self) -> str:
        return "<the value fn returns>"


FROM_RETURN: Any = _FromReturn()


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
    #: False when the value was to come from ``fn``'s return and ``fn`` raised or
    #: returned ``False``: which value the write carried is not known (``value`` is None)
    value_known: bool = True


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


def _check_returned(key: Hashable, fn: Callable[[], object], result: object) -> None:
    """The value ``write(key, fn)`` takes from ``fn``'s return must be usable."""
    rule = (
        "write(key, fn) records the value fn returns; return the value the system "
        "assigned (e.g. the order id), or pass it: write(key, value, fn)"
    )
    if result is None or isinstance(result, bool):
        raise CheckError(f"{_CHECK}: write({key!r}, {fn!r}): fn returned {result!r}; {rule}")
    try:
        hash(result)
    except TypeError:
        raise CheckError(
            f"{_CHECK}: write({key!r}, {fn!r}): fn returned {type(result).__name__} "
            f"{result!r:.80}, which is not hashable; {rule}"
        ) from None


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

    def write(
        self,
        key: Hashable,
        value: Any = FROM_RETURN,
        fn: Callable[[], object] | None = None,
    ) -> Op:
        """Call ``fn`` (the client's write under ``key``) and record it.

        Two forms::

            history.write(key, value, fn)   # the value is known before the call
            history.write(key, fn)          # the value is what fn returns (an id the
                                            # server assigns, e.g. from a 201 body)

        (also ``write(key, fn=fn)`` and ``write(key, value=v, fn=fn)``). Returning
        normally is ``ack`` (returning ``False`` is ``fail``); raising one of
        ``definite_failures`` is ``fail``; raising any other ``Exception`` is
        ``unknown``. The exception is swallowed: failures are expected during faults.
        Without a value, ``fn`` must return a hashable value on success; a write that
        raised has no known value (``Op.value_known`` is False), and ``check()`` counts
        an unwritten value found under its key as possibly that write's.
        """
        if fn is None:
            if value is FROM_RETURN or not callable(value):
                raise CheckError(
                    f"{_CHECK}: write({key!r}, {value!r}) has no function to call; use "
                    f"write(key, fn) to record the value fn returns, or write(key, value, fn)"
                )
            fn, value = value, FROM_RETURN
        if not callable(fn):
            raise CheckError(
                f"{_CHECK}: write({key!r}, ..., fn={fn!r}): fn is not callable; pass the "
                f"zero-argument function that performs the write"
            )
        from_return = value is FROM_RETURN
        t = self.timeline.now() if self.timeline is not None else time.monotonic()
        start = time.perf_counter()
        error = ""
        outcome: Outcome
        result: object = None
        try:
            result = fn()
        except self.definite_failures as exc:
            outcome, error = "fail", f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            outcome, error = "unknown", f"{type(exc).__name__}: {exc}"
        else:
            outcome = "fail" if result is False else "ack"
        latency = time.perf_counter() - start
        known = True
        if from_return:
            if outcome == "ack":
                _check_returned(key, fn, result)
                value = result
            else:
                value, known = None, False
        op = Op("write", key, value, outcome, t, latency, error[:200], known)
        with self._lock:
            self._ops.append(op)
        if self.timeline is not None:
            self.timeline.sample(self.label, t=t, latency=latency, ok=outcome == "ack")
        return op

    def check(
        self,
        read: Callable[[Any], Iterable[Hashable]] | Mapping[Any, Iterable[Hashable]],
        *,
        settle: float | None = None,
        target: str = "",
    ) -> CheckResult:
        """Read back every key and judge: no acknowledged write lost, none duplicated.

        ``read(key)`` returns the values the system holds under ``key`` (or pass a
        mapping key -> values). Raises :class:`HistoryViolated` listing lost and
        duplicated writes; returns the result otherwise. In a test (``chaos.history()``)
        it must run after every fault is healed (a CheckError otherwise).

        ``settle`` (seconds, or None: read once) is for systems whose reads lag behind
        their acknowledgements (replicas, queues, caches): the keys are read again every
        ``settle`` seconds until two reads in a row give the same verdict (the same lost and
        duplicated values), at most 20 times. The result says how long it
        took (``measured["settled_after"]``, ``measured["reads"]``) or that it did not
        settle.
        """
        require_healed(self._context, "history.check")
        if settle is not None:
            check_positive(_CHECK, "settle", settle, allow_zero=True)
        started = time.perf_counter()
        ops = [op for op in self.ops if op.kind == "write"]
        if not ops:
            raise CheckError(f"{_CHECK}: no write was recorded; record writes with write()")
        verdict = _Verdict.judge(ops, _read_back(read, ops))
        reads, settled = 1, True
        if settle is not None:
            settled = False
            while reads < _SETTLE_ROUNDS:
                time.sleep(settle)
                again = _Verdict.judge(ops, _read_back(read, ops))
                reads += 1
                if again.key == verdict.key:
                    settled = True
                    verdict = again
                    break
                verdict = again
        measured = verdict.measured()
        note = ""
        if settle is not None:
            waited = time.perf_counter() - started
            measured.update(reads=reads, settled_after=round(waited, 3))
            if settled:
                note = f"; settled after {waited:.2f} s ({reads} reads, settle={settle:g} s)"
            else:
                note = (
                    f"; did not settle: the verdict still changed after {reads} reads in "
                    f"{waited:.2f} s (settle={settle:g} s); the last read is judged"
                )
        if verdict.problems:
            message = f"{_CHECK} violated: {'; '.join(verdict.problems)}; {verdict.summary}"
        else:
            message = f"no acknowledged write lost, none duplicated; {verdict.summary}"
        result = CheckResult(
            name=_CHECK,
            passed=not verdict.problems,
            measured=measured,
            allowed={"lost": 0, "duplicated": 0},
            message=message + note,
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


def _read_back(
    read: Callable[[Any], Iterable[Hashable]] | Mapping[Any, Iterable[Hashable]],
    ops: list[Op],
) -> Counter[tuple[Hashable, Hashable]]:
    """How often each (key, value) is present, reading every written key once."""
    keys: list[Hashable] = []
    for op in ops:
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
    return present


@dataclass
class _Verdict:
    """What one read-back says about the recorded writes."""

    ops: list[Op]
    lost: list[tuple[Hashable, Hashable]]
    duplicated: list[tuple[tuple[Hashable, Hashable], int, int]]
    phantom: list[tuple[Hashable, Hashable]]
    unknown_present: int
    acked: int

    @classmethod
    def judge(cls, ops: list[Op], present: Counter[tuple[Hashable, Hashable]]) -> _Verdict:
        performed: Counter[tuple[Hashable, Hashable]] = Counter()
        acked: Counter[tuple[Hashable, Hashable]] = Counter()
        # writes whose value was to come from their return but never did: an unwritten
        # value found under their key may be theirs (the server assigned it, the client
        # never heard)
        unvalued: Counter[Hashable] = Counter()
        for op in ops:
            if not op.value_known:
                if op.outcome == "unknown":
                    unvalued[op.key] += 1
                continue
            performed[(op.key, op.value)] += 1
            if op.outcome == "ack":
                acked[(op.key, op.value)] += 1
        # in the order they were written, which is the order a reader thinks in
        lost = [kv for kv in acked if present[kv] == 0]
        duplicated = []
        claimed = 0
        for kv in present:
            extra = present[kv] - performed[kv]
            if extra <= 0:
                continue
            if performed[kv] == 0 and unvalued[kv[0]] >= extra:
                unvalued[kv[0]] -= extra  # an unknown write's server-assigned value
                claimed += extra
                continue
            duplicated.append((kv, present[kv], performed[kv]))
        unknown_present = claimed + sum(
            1
            for op in ops
            if op.outcome == "unknown" and op.value_known and present[(op.key, op.value)]
        )
        phantom = sorted(
            (
                kv
                for kv in performed
                if present[kv]
                and not acked[kv]
                and all(
                    o.outcome == "fail" for o in ops if o.value_known and (o.key, o.value) == kv
                )
            ),
            key=repr,
        )
        return cls(ops, lost, duplicated, phantom, unknown_present, len(acked))

    @property
    def key(self) -> tuple[object, ...]:
        """What must stay the same between two reads for the verdict to have settled."""
        return (self.lost, self.duplicated, self.phantom, self.unknown_present)

    @property
    def problems(self) -> list[str]:
        problems = []
        if self.lost:
            problems.append(
                f"{len(self.lost)} of {self.acked} acknowledged writes lost ({_by_key(self.lost)})"
            )
        if self.duplicated:
            shown = [(k, f"{v!r} present {n}x, written {p}x") for (k, v), n, p in self.duplicated]
            problems.append(
                f"{len(self.duplicated)} values duplicated ({_by_key(shown, raw=True)})"
            )
        return problems

    @property
    def summary(self) -> str:
        outcomes = Counter(op.outcome for op in self.ops)
        return (
            f"{len(self.ops)} writes: {outcomes['ack']} ack, {outcomes['fail']} fail, "
            f"{outcomes['unknown']} unknown ({self.unknown_present} of those present)"
        )

    def measured(self) -> dict[str, Any]:
        outcomes = Counter(op.outcome for op in self.ops)
        return {
            "writes": len(self.ops),
            "ack": outcomes["ack"],
            "fail": outcomes["fail"],
            "unknown": outcomes["unknown"],
            "unknown_present": self.unknown_present,
            "lost": [[repr(k), repr(v)] for k, v in self.lost],
            "duplicated": [[repr(k), repr(v), n, p] for (k, v), n, p in self.duplicated],
            "failed_but_present": [[repr(k), repr(v)] for k, v in self.phantom],
        }
