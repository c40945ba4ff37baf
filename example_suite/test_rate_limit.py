"""Chaos experiments on a rate-limiting payment provider: the rate-limit cascade.

The provider answers every charge with ``429 Too Many Requests`` and ``Retry-After: 1``
(``http_error`` with a header, on the proxy in front of it). A client that retries a
429 like any other error turns one throttled dependency into a storm against it, and
its own callers into a queue of slow failures. Every request is counted and timed
where the provider sees it: at the proxy.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from example_suite.shop.harness import ShopRequestFailed
from example_suite.shop.testbed import Shop
from pytest_chaos import Chaos, ChaosProxy

RETRY_AFTER = 1  # seconds the provider asks for in its 429 answers
TOO_MANY = {"Retry-After": str(RETRY_AFTER)}


class RequestClock:
    """When requests reached a proxy: its ``http_requests`` counter, sampled every
    ``every`` seconds in a thread while the ``with`` block runs."""

    def __init__(self, proxy: ChaosProxy, every: float = 0.005) -> None:
        self.proxy = proxy
        self.every = every
        self.arrivals: list[float] = []  # one time per request, seconds since the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="request-clock", daemon=True)
        self._start = 0.0

    def __repr__(self) -> str:
        return f"<RequestClock {self.proxy.name} requests={len(self.arrivals)}>"

    def _count(self) -> int:
        return int(self.proxy.stats()["http_requests"])

    def _run(self) -> None:
        seen = self._count()
        while not self._stop.wait(self.every):
            now = self._count()
            if now > seen:
                self.arrivals.extend([time.monotonic() - self._start] * (now - seen))
                seen = now

    def __enter__(self) -> RequestClock:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        time.sleep(self.every * 3)  # the last requests get counted
        self._stop.set()
        self._thread.join()

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests."""
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]


def _checkout(shop: Shop) -> Any:
    order = shop.place_order()
    return shop.pay_order(order["id"])


def _keep_checking_out(shop: Shop, seconds: float, pause: float = 0.05) -> int:
    """Customers pay one after the other for ``seconds`` (refusals expected)."""
    calls = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        calls += 1
        with contextlib.suppress(ShopRequestFailed):
            _checkout(shop)
        time.sleep(pause)
    return calls


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_shop_sends_nothing_before_retry_after_has_passed(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: after a 429 with ``Retry-After: 1``, the shop sends the provider no
    request for 1 s (timed at the proxy, 0.25 s of sampling slack), although customers
    keep paying every 50 ms; and it does call again once the second has passed."""
    with RequestClock(shop.pay) as clock, shop.pay.http_error(429, headers=TOO_MANY):
        calls = _keep_checking_out(shop, seconds=2.3)
    gaps = clock.gaps()
    chaos.timeline.record(
        "note", "request_gaps", target="payments", gaps=[round(g, 3) for g in gaps], calls=calls
    )
    early = [round(g, 2) for g in gaps if g < RETRY_AFTER - 0.25]
    assert len(clock.arrivals) >= 2, (
        f"the shop called the rate-limited provider {len(clock.arrivals)} time(s) in 2.3 s "
        f"of {calls} checkouts: it should try again once Retry-After ({RETRY_AFTER} s) passed"
    )
    assert not early, (
        f"requests before Retry-After had passed: {len(early)} of {len(gaps)} gaps between "
        f"requests at the proxy were shorter than {RETRY_AFTER} s: {early[:10]} s "
        f"({len(clock.arrivals)} requests for {calls} checkouts)"
    )


def _refused_fast_with_retry_after(shop: Shop) -> None:
    """One checkout under the rate limit: it must be refused with 503 and a Retry-After
    (a clean "try again later"); anything else raises."""
    order = shop.place_order()
    response = requests.post(f"{shop.app.base_url}/orders/{order['id']}/pay", timeout=5.0)
    with response:
        wait = response.headers.get("Retry-After")
        if response.status_code != 503 or wait is None or not wait.isdigit():
            raise AssertionError(
                f"checkout answered {response.status_code} with Retry-After={wait!r}, "
                f"not 503 with Retry-After: {response.text.strip()[:120]}"
            )


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_callers_get_a_fast_503_with_retry_after_not_a_pile_up(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: while the provider rate-limits, 6 concurrent customers paying for 1.5 s
    are all refused with 503 and a Retry-After within 500 ms (p99), instead of
    waiting on retries that pile up behind the limit."""
    with shop.pay.http_error(429, headers=TOO_MANY):
        with contextlib.suppress(ShopRequestFailed):
            _checkout(shop)  # the first 429 reaches the shop
        chaos.steady_state(
            lambda: _refused_fast_with_retry_after(shop),
            duration=1.5,
            concurrency=6,
            p99=0.5,
            max_error_rate=0.0,
        )


@pytest.mark.proxy_extensions
@pytest.mark.chaos(blast_radius=["payments"])
def test_rate_limit_causes_no_retry_storm_upstream(chaos: Chaos, shop: Shop) -> None:
    """Hypothesis: under a sustained 429, 20 checkouts 50 ms apart send the provider at
    most 0.5 requests each on average (counted at the proxy): the shop waits out the
    limit instead of multiplying the load on a provider that asked for less."""
    customer = f"rl-{uuid.uuid4().hex[:6]}"
    with shop.pay.http_error(429, headers=TOO_MANY):
        chaos.retries(
            lambda: shop.pay_order(shop.place_order(customer=customer)["id"]),
            proxy=shop.pay,
            max_attempts_per_call=0.5,
            calls=20,
            interval=0.05,
            counter="http_requests",
        )
