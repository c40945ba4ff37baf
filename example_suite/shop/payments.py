"""The order API's client of the payment provider: timeouts, retries, breaker, idempotency.

The layers, outermost first, as resilience libraries usually order them:

1. retries with exponential backoff and full jitter (tenacity), only for errors that
   may go away (5xx, connection errors, timeouts), never for an open breaker;
2. a circuit breaker (pybreaker) that judges every attempt; besides pybreaker's own rule
   (N consecutive failures) it opens when the failure rate over the last attempts passes
   a threshold, because a provider failing 30% of requests rarely fails 5 in a row;
3. an HTTP call with connect and read timeouts, carrying an ``Idempotency-Key`` derived
   from the order, so that a retried or duplicated charge is charged once.

pybreaker holds its lock for the whole guarded call, which would serialise every payment
behind one slow request; so the HTTP call runs outside and its outcome is fed to the
breaker afterwards, holding the lock for microseconds.
"""

from __future__ import annotations

import collections
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pybreaker
import requests
from requests.adapters import HTTPAdapter
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_none,
    wait_random_exponential,
)

from example_suite.shop.config import Resilience

__all__ = [
    "BreakerOpen",
    "PaymentDeclined",
    "PaymentUnavailable",
    "PaymentsClient",
    "RateLimited",
    "retry_after_seconds",
]


class PaymentUnavailable(Exception):
    """The provider failed, timed out or could not be reached (worth a retry)."""


class PaymentDeclined(Exception):
    """The provider refused the charge (4xx): retrying would not help."""


class BreakerOpen(Exception):
    """The breaker is open: the provider is not called at all until it half-opens."""


class RateLimited(Exception):
    """The provider answered 429: it is not called again before its ``Retry-After``.

    ``retry_after`` is how many seconds are left until then.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """The seconds a ``Retry-After`` header asks to wait: delta-seconds or an HTTP date
    (RFC 9110); ``default`` when absent or unreadable.

    >>> retry_after_seconds("2"), retry_after_seconds(None), retry_after_seconds("soon")
    (2.0, 1.0, 1.0)
    """
    if value is None:
        return default
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _FailureRate(pybreaker.CircuitBreakerListener):
    """Opens the breaker when too many of the last attempts failed."""

    def __init__(self, window: int, min_calls: int, rate: float) -> None:
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=window)
        self._min_calls = min_calls
        self._rate = rate

    def success(self, cb: pybreaker.CircuitBreaker) -> None:
        self._outcomes.append(True)

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self._outcomes.append(False)
        failed = self._outcomes.count(False)
        if (
            cb.current_state == pybreaker.STATE_CLOSED
            and len(self._outcomes) >= self._min_calls
            and failed / len(self._outcomes) >= self._rate
        ):
            cb.open()

    def state_change(self, cb: pybreaker.CircuitBreaker, old: Any, new: Any) -> None:
        if new is not None and new.name != pybreaker.STATE_CLOSED:
            self._outcomes.clear()


class PaymentsClient:
    """Charges orders at the payment provider at ``base_url``."""

    def __init__(self, base_url: str, resilience: Resilience) -> None:
        self.base_url = base_url
        self.resilience = resilience
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=32, max_retries=0)
        self._session.mount("http://", adapter)
        self._lock = threading.Lock()
        self._trial = threading.Lock()  # the one call allowed through a half-open breaker
        self.attempts = 0
        self._quiet_until = 0.0  # monotonic time a 429's Retry-After asks to wait for
        self.breaker: pybreaker.CircuitBreaker | None = None
        if resilience.breaker:
            self.breaker = pybreaker.CircuitBreaker(
                fail_max=5,
                reset_timeout=resilience.breaker_reset,
                exclude=[PaymentDeclined],
                listeners=[
                    _FailureRate(
                        resilience.breaker_window,
                        resilience.breaker_min_calls,
                        resilience.breaker_failure_rate,
                    )
                ],
                name="payments",
            )

    def __repr__(self) -> str:
        return (
            f"<PaymentsClient {self.base_url} breaker={self.breaker_state} "
            f"attempts={self.attempts}>"
        )

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open``; ``none`` without a breaker."""
        return "none" if self.breaker is None else str(self.breaker.current_state)

    def charge(self, order_id: int, amount_cents: int) -> dict[str, Any]:
        """Charge the order once; the provider's charge as JSON.

        Raises :class:`BreakerOpen` or :class:`RateLimited` (fast),
        :class:`PaymentDeclined`, or :class:`PaymentUnavailable` once the retries are
        spent.
        """
        r = self.resilience
        if r.honour_retry_after:
            left = self._quiet_until - time.monotonic()
            if left > 0:
                raise RateLimited(
                    f"payment provider rate-limited us; retry after {left:.1f}s", left
                )
        key = f"order-{order_id}-charge" if r.idempotency_keys else None
        wait = (
            wait_random_exponential(multiplier=r.backoff_initial, max=r.backoff_max)
            if r.backoff_max > 0
            else wait_none()
        )
        retrying = Retrying(
            stop=stop_after_attempt(r.payments_attempts),
            wait=wait,
            retry=retry_if_exception_type(PaymentUnavailable),
            reraise=True,
        )
        result: dict[str, Any] = retrying(self._guarded, order_id, amount_cents, key)
        return result

    def _guarded(self, order_id: int, amount_cents: int, key: str | None) -> dict[str, Any]:
        breaker = self.breaker
        if breaker is None:
            return self._post(order_id, amount_cents, key)
        trial = self._admit(breaker)
        try:
            try:
                outcome: dict[str, Any] | BaseException = self._post(order_id, amount_cents, key)
            except (PaymentUnavailable, PaymentDeclined) as exc:
                outcome = exc
            try:
                return breaker.call(_replay, outcome)
            except pybreaker.CircuitBreakerError as exc:
                # The breaker tripped on this very attempt, or another thread opened it
                # meanwhile. A failed attempt stays failed; a charge that went through is
                # a charge made, whatever the breaker's bookkeeping says.
                if isinstance(outcome, BaseException):
                    raise outcome from exc
                return outcome
        finally:
            if trial:
                self._trial.release()

    def _admit(self, breaker: pybreaker.CircuitBreaker) -> bool:
        """Let a call through a closed breaker; once open, only one trial at a time after
        the reset timeout. True when this call is that trial (it holds the permit)."""
        if breaker.current_state == pybreaker.STATE_CLOSED:
            return False
        if self._still_open(breaker):
            raise BreakerOpen(
                f"payments circuit open since {breaker._state_storage.opened_at:%H:%M:%S}; "
                f"retry after {breaker.reset_timeout}s"
            )
        if not self._trial.acquire(blocking=False):
            raise BreakerOpen("payments circuit half-open and its trial call is in flight")
        return True

    @staticmethod
    def _still_open(breaker: pybreaker.CircuitBreaker) -> bool:
        if breaker.current_state != pybreaker.STATE_OPEN:
            return False
        opened_at: datetime | None = breaker._state_storage.opened_at
        if opened_at is None:
            return False
        return datetime.now(UTC) < opened_at + timedelta(seconds=breaker.reset_timeout)

    def _post(self, order_id: int, amount_cents: int, key: str | None) -> dict[str, Any]:
        r = self.resilience
        headers = {"Idempotency-Key": key} if key else {}
        timeout = (
            None
            if r.payments_timeout is None
            else (r.payments_connect_timeout or r.payments_timeout, r.payments_timeout)
        )
        with self._lock:
            self.attempts += 1
        try:
            response = self._session.post(
                f"{self.base_url}/charges",
                json={"order_id": order_id, "amount_cents": amount_cents},
                headers=headers,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise PaymentUnavailable(f"payment provider unreachable: {exc}") from exc
        with response:
            if response.status_code == 429:
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if not r.honour_retry_after:  # the fragile build: a 429 is one more failure
                    raise PaymentUnavailable(f"payment provider answered 429 (wait {wait}s)")
                with self._lock:
                    self._quiet_until = max(self._quiet_until, time.monotonic() + wait)
                raise RateLimited(f"payment provider answered 429, retry after {wait}s", wait)
            if response.status_code >= 500:
                raise PaymentUnavailable(f"payment provider answered {response.status_code}")
            if response.status_code >= 400:
                raise PaymentDeclined(f"payment declined ({response.status_code}): {response.text}")
            try:
                body: dict[str, Any] = response.json()
            except ValueError as exc:
                raise PaymentUnavailable("payment provider answered with invalid JSON") from exc
        return body

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._session.close()


def _replay(outcome: dict[str, Any] | BaseException) -> dict[str, Any]:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome
