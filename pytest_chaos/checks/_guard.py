"""guard: an abort condition probed in the background while faults are active.

On the first breach the guard calls ``on_breach(reason)`` once: through ``chaos.guard``
that is ``Chaos.abort``, which heals every fault of the test at once and records the
``abort``. The test body is not interrupted (no thread can safely interrupt another),
but it runs on against a healed system, and the ``with`` block then raises
:class:`GuardTripped`, so the test fails with a distinct error and its record says
``aborted``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pytest_chaos.checks._common import Finish, fmt_s
from pytest_chaos.checks._context import CheckContext, bind_context
from pytest_chaos.checks._errors import GuardTripped
from pytest_chaos.checks._probe import Call, Probe, check_count, check_positive
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    from pytest_chaos.timeline import Timeline

__all__ = ["Guard", "guard"]

_CHECK = "guard"


def _fault_ids(healed: object) -> list[str]:
    """Fault ids out of whatever ``on_breach`` returned (Faults, ids, or nothing)."""
    if not isinstance(healed, list | tuple):
        return []
    ids = []
    for item in healed:
        fid = getattr(item, "fault_id", None) or getattr(item, "id", None) or item
        ids.append(str(fid))
    return ids


class Guard:
    """A running guard; use it as a context manager (see :func:`guard`).

    ``breached`` tells whether it tripped, ``reason`` why, ``calls`` what it saw.
    """

    def __init__(
        self,
        probe: Probe,
        *,
        on_breach: Callable[[str], object] | None,
        record_abort: bool,
        interval: float,
        consecutive: int,
        max_latency: float | None,
        active: Callable[[], bool] | None,
        target: str,
        finish: Finish,
    ) -> None:
        self._probe = probe
        self._on_breach = on_breach
        self._record_abort = record_abort
        self._interval = interval
        self._consecutive = consecutive
        self._max_latency = max_latency
        self._active = active
        self._target = target
        self._finish = finish
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._crash: BaseException | None = None
        self._start = 0.0
        self.calls: list[Call] = []
        self.breached = False
        self.breached_at: float | None = None
        self.reason = ""
        self.healed: list[str] = []

    def _bad(self, call: Call) -> str:
        if not call.ok:
            return call.error
        if self._max_latency is not None and call.latency > self._max_latency:
            return f"took {fmt_s(call.latency)} > max_latency {fmt_s(self._max_latency)}"
        return ""

    def _trip(self, reason: str) -> None:
        self.breached = True
        self.breached_at = self._probe.now()
        self.reason = reason
        healed: object = None
        if self._on_breach is not None:
            try:
                healed = self._on_breach(reason)
            except BaseException as exc:  # a heal that failed: re-raised at the exit
                if self._crash is None:
                    self._crash = exc
        self.healed = _fault_ids(healed)
        timeline = self._probe.timeline
        if self._record_abort and timeline is not None:
            timeline.record("abort", _CHECK, target=self._target, reason=reason, healed=self.healed)

    def _run(self) -> None:
        streak = 0
        try:
            while not self._stop.is_set():
                if self._active is not None and not self._active():
                    streak = 0
                    self._stop.wait(self._interval or 0.01)
                    continue
                call = self._probe()
                self.calls.append(call)
                why = self._bad(call)
                streak = streak + 1 if why else 0
                if streak >= self._consecutive:
                    self._trip(
                        f"guard {self._probe.label!r} breached: {streak} bad probe call(s) "
                        f"in a row, last {why} after {fmt_s(call.latency)}; "
                        f"every fault was healed"
                    )
                    return
                self._stop.wait(self._interval)
        except BaseException as exc:  # the guard's safety is gone: heal, then re-raise at exit
            if self.breached:
                return  # _trip already ran and kept its own error
            self._crash = exc
            self._trip(f"guard probe crashed ({type(exc).__name__}); every fault was healed")

    def __enter__(self) -> Guard:
        if self._thread is not None:
            raise CheckError(f"{_CHECK}: a Guard can be entered only once")
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="chaos-guard", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        if exc is not None and not isinstance(exc, Exception):
            return  # KeyboardInterrupt and friends win
        if self._crash is not None:
            raise self._crash
        self._finish(self.result())

    def result(self) -> CheckResult:
        """The guard's verdict so far."""
        bad = sum(1 for c in self.calls if self._bad(c))
        measured: dict[str, Any] = {"calls": len(self.calls), "bad_calls": bad}
        allowed: dict[str, Any] = {"consecutive": self._consecutive}
        if self._max_latency is not None:
            allowed["max_latency"] = self._max_latency
        if self.breached:
            measured.update(
                breached_at=round(self.breached_at or 0.0, 6),
                reason=self.reason,
                healed=list(self.healed),
            )
            message = f"guard tripped, test aborted: {self.reason}"
        else:
            message = (
                f"guard held: {len(self.calls)} probe calls, {bad} bad, never "
                f"{self._consecutive} in a row"
            )
        return CheckResult(
            name=_CHECK,
            passed=not self.breached,
            measured=measured,
            allowed=allowed,
            message=message,
            duration=time.perf_counter() - self._start,
            target=self._target,
            violation=GuardTripped,
        )

    def __repr__(self) -> str:
        state = "breached" if self.breached else "watching" if self._thread else "idle"
        return f"<Guard {self._probe.label!r} {state} calls={len(self.calls)}>"


def guard(
    probe: Callable[[], object],
    *,
    on_breach: Callable[[str], object] | None = None,
    interval: float = 0.05,
    consecutive: int = 1,
    max_latency: float | None = None,
    active: Callable[[], bool] | None = None,
    failures: object = (Exception,),
    target: str = "",
    label: str | None = None,
    timeline: Timeline | None = None,
    finish: Finish | None = None,
    record_abort: bool = True,
    only_while_faults: bool = True,
    context: CheckContext | None = None,
) -> Guard:
    """A background abort condition, as a context manager.

    Inside the ``with`` block the probe is called every ``interval`` seconds (only while
    ``active()`` is true, if given). A call is bad when it fails (raises one of
    ``failures`` or returns ``False``) or takes longer than ``max_latency`` seconds.
    After ``consecutive`` bad calls in a row the guard trips: it calls
    ``on_breach(reason)`` once (a function that heals every fault; what it returns, a
    list of faults or ids, is recorded as ``healed``), records ``abort`` on ``timeline``
    and stops probing. At the exit of the block a tripped guard raises
    :class:`GuardTripped`. The probe thread is always joined at the exit.

    As ``chaos.guard(...)`` (with the test's experiment as ``context``), a breach
    aborts the experiment (``chaos.abort``: every fault healed at once, the test marked
    aborted) unless ``on_breach`` is given, and with ``only_while_faults`` (default) the
    probe runs only while a fault is active.
    """
    if context is not None:
        if on_breach is None:
            on_breach = context.abort
            record_abort = False  # chaos.abort records the abort itself
        if active is None and only_while_faults:
            active = lambda: bool(context.active_faults)  # noqa: E731
    timeline, finish = bind_context(context, timeline, finish)
    check_positive(_CHECK, "interval", interval, allow_zero=True)
    check_count(_CHECK, "consecutive", consecutive)
    if max_latency is not None:
        check_positive(_CHECK, "max_latency", max_latency)
    if on_breach is not None and not callable(on_breach):
        raise CheckError(f"{_CHECK}: on_breach={on_breach!r} is not callable; pass a function")
    runner = Probe(probe, check=_CHECK, failures=failures, timeline=timeline, label=label)
    return Guard(
        runner,
        on_breach=on_breach,
        record_abort=record_abort,
        interval=interval,
        consecutive=consecutive,
        max_latency=max_latency,
        active=active,
        target=target,
        finish=finish,
    )
