"""ChecksMixin: the checks as methods of the ``chaos`` fixture (``Chaos`` inherits it).

Each method is the function of the same name in :mod:`pytest_chaos.checks` with the
test's timeline filled in, its verdict handed to ``Chaos._check_done`` (which records
the ``check`` event, calls the ``pytest_chaos_after_check`` hook and raises), and, for
the guard, ``Chaos.abort`` as the breach action. The mixin uses only the controller
surface of docs/internals.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

from pytest_chaos._surface import ControllerSurface
from pytest_chaos.checks._adapters import BreakerWatch, watch_breaker
from pytest_chaos.checks._breaker import DEFAULT_COUNTERS, circuit_breaker
from pytest_chaos.checks._guard import Guard, guard
from pytest_chaos.checks._history import History
from pytest_chaos.checks._idempotent import idempotent
from pytest_chaos.checks._recovers import recovers
from pytest_chaos.checks._result import CheckResult
from pytest_chaos.checks._retries import retries
from pytest_chaos.checks._steady import Observation, observe, steady_state
from pytest_chaos.errors import CheckError

if TYPE_CHECKING:
    pass

__all__ = ["ChecksMixin"]


class ChecksMixin:
    """Resilience checks as ``chaos.<check>(...)``; see :mod:`pytest_chaos.checks`."""

    def _host(self) -> ControllerSurface:
        return cast(ControllerSurface, self)

    def _finish_check(self, result: CheckResult) -> None:
        host = self._host()
        host._check_done(result, None if result.passed else result.exception())
        # a controller that records without raising must not turn a failure into a pass
        result.raise_if_failed()

    def _require_healed(self, check: str) -> None:
        active = list(self._host().active_faults)
        if active:
            names = ", ".join(repr(f) for f in active)
            raise CheckError(
                f"{check} judges the system after heal, but faults are still active: "
                f"{names}; heal them first (leave their with blocks or call .heal())"
            )

    def steady_state(
        self,
        probe: Callable[[], object],
        *,
        calls: int | None = None,
        duration: float | None = None,
        concurrency: int = 1,
        interval: float = 0.0,
        p50: float | None = None,
        p95: float | None = None,
        p99: float | None = None,
        max_error_rate: float = 0.0,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> CheckResult:
        """:func:`pytest_chaos.checks.steady_state` on this test's timeline.

        Before any fault is injected, a violation raises ``SteadyStateNotMet`` (an error).
        """
        return steady_state(
            probe,
            calls=calls,
            duration=duration,
            concurrency=concurrency,
            interval=interval,
            p50=p50,
            p95=p95,
            p99=p99,
            max_error_rate=max_error_rate,
            failures=failures,
            target=target,
            label=label,
            timeline=self._host().timeline,
            finish=self._finish_check,
        )

    def observe(
        self,
        probe: Callable[[], object],
        *,
        concurrency: int = 1,
        interval: float = 0.05,
        p50: float | None = None,
        p95: float | None = None,
        p99: float | None = None,
        max_error_rate: float = 0.0,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> Observation:
        """:func:`pytest_chaos.checks.observe`: the steady state *during* a ``with`` block."""
        return observe(
            probe,
            concurrency=concurrency,
            interval=interval,
            p50=p50,
            p95=p95,
            p99=p99,
            max_error_rate=max_error_rate,
            failures=failures,
            target=target,
            label=label,
            timeline=self._host().timeline,
            finish=self._finish_check,
        )

    def guard(
        self,
        probe: Callable[[], object],
        *,
        interval: float = 0.05,
        consecutive: int = 1,
        max_latency: float | None = None,
        only_while_faults: bool = True,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> Guard:
        """:func:`pytest_chaos.checks.guard` whose breach calls ``chaos.abort(reason)``.

        With ``only_while_faults`` (default) the probe runs only while a fault is
        active. The abort heals every fault at once and marks the test aborted; the
        ``with`` block then raises ``GuardTripped``.
        """
        host = self._host()
        active = (lambda: bool(host.active_faults)) if only_while_faults else None
        return guard(
            probe,
            on_breach=host.abort,
            record_abort=False,
            interval=interval,
            consecutive=consecutive,
            max_latency=max_latency,
            active=active,
            failures=failures,
            target=target,
            label=label,
            timeline=host.timeline,
            finish=self._finish_check,
        )

    def circuit_breaker(
        self,
        call: Callable[[], object],
        *,
        proxy: object,
        opens_within_calls: int,
        fail_fast: float = 0.1,
        reset_timeout: float | None = None,
        heal: Callable[[], object] | None = None,
        fault: object | None = None,
        open_calls: int = 5,
        close_calls: int = 3,
        closes_within: float | None = None,
        interval: float = 0.05,
        counters: Sequence[str] = DEFAULT_COUNTERS,
        breaker: object | None = None,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> CheckResult:
        """:func:`pytest_chaos.checks.circuit_breaker`.

        With ``reset_timeout`` and neither ``heal=`` nor ``fault=``, the check heals
        every active fault of the test (``chaos.heal_all()``) to watch the breaker close.
        """
        host = self._host()
        if reset_timeout is not None and heal is None and fault is None:
            heal = lambda: host.heal_all("test")  # noqa: E731
        return circuit_breaker(
            call,
            proxy=proxy,
            opens_within_calls=opens_within_calls,
            fail_fast=fail_fast,
            reset_timeout=reset_timeout,
            heal=heal,
            fault=fault,
            open_calls=open_calls,
            close_calls=close_calls,
            closes_within=closes_within,
            interval=interval,
            counters=counters,
            breaker=breaker,
            failures=failures,
            target=target,
            label=label,
            timeline=host.timeline,
            finish=self._finish_check,
        )

    def retries(
        self,
        call: Callable[[], object],
        *,
        proxy: object,
        max_attempts_per_call: float,
        min_retry_gap: float | None = None,
        calls: int = 5,
        counter: str | Sequence[str] = "connections_accepted",
        interval: float = 0.0,
        settle: float = 0.1,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> CheckResult:
        """:func:`pytest_chaos.checks.retries` on this test's timeline."""
        return retries(
            call,
            proxy=proxy,
            max_attempts_per_call=max_attempts_per_call,
            min_retry_gap=min_retry_gap,
            calls=calls,
            counter=counter,
            interval=interval,
            settle=settle,
            failures=failures,
            target=target,
            label=label,
            timeline=self._host().timeline,
            finish=self._finish_check,
        )

    def idempotent(
        self,
        action: Callable[[], object],
        *,
        state: Callable[[], object],
        via: object = None,
        times: int = 2,
        failures: object = (),
        require_effect: bool = True,
        settle: float | None = None,
        target: str = "",
    ) -> CheckResult:
        """:func:`pytest_chaos.checks.idempotent` on this test's timeline."""
        return idempotent(
            action,
            state=state,
            via=via,
            times=times,
            failures=failures,
            require_effect=require_effect,
            settle=settle,
            target=target,
            timeline=self._host().timeline,
            finish=self._finish_check,
        )

    def recovers(
        self,
        probe: Callable[[], object],
        *,
        within: float,
        consecutive: int = 3,
        interval: float = 0.05,
        since: float | None = None,
        failures: object = (Exception,),
        target: str = "",
        label: str | None = None,
    ) -> CheckResult:
        """:func:`pytest_chaos.checks.recovers`, timed from the last heal on the timeline.

        Every fault must be healed first (a CheckError otherwise).
        """
        self._require_healed("recovers")
        return recovers(
            probe,
            within=within,
            consecutive=consecutive,
            interval=interval,
            since=since,
            failures=failures,
            target=target,
            label=label,
            timeline=self._host().timeline,
            finish=self._finish_check,
        )

    def history(
        self, *, definite_failures: object = (ConnectionRefusedError,), label: str = "history:write"
    ) -> History:
        """A :class:`pytest_chaos.checks.History` on this test's timeline.

        Its ``check()`` must run after every fault is healed (a CheckError otherwise).
        """
        mixin = self

        class _TestHistory(History):
            def check(self, read: Any, *, target: str = "") -> CheckResult:
                mixin._require_healed("history.check")
                return super().check(read, target=target)

        return _TestHistory(
            definite_failures=definite_failures,
            timeline=self._host().timeline,
            finish=self._finish_check,
            label=label,
        )

    def watch_breaker(self, breaker: object, *, name: str | None = None) -> BreakerWatch:
        """Record a pybreaker / circuitbreaker / purgatory breaker's transitions.

        Use it as a context manager (or call ``close()``) so its listener is removed.
        """
        return watch_breaker(breaker, name=name, timeline=self._host().timeline)
