"""Unit tests of the shop's event format, event publisher and Retry-After handling (no
Redis, no shop processes: a refused port stands for a broker that is down, a local HTTP
server for a rate-limiting provider)."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("redis")
pytest.importorskip("pybreaker")
pytest.importorskip("tenacity")

from example_suite.shop.config import Resilience
from example_suite.shop.events import (
    BrokerUnavailable,
    EventPublisher,
    check_event,
    make_event,
)
from example_suite.shop.payments import (
    PaymentsClient,
    PaymentUnavailable,
    RateLimited,
    retry_after_seconds,
)
from pytest_chaos.experiment._messages import corrupt_value


def test_a_sound_event_passes_and_any_damage_to_a_field_is_caught() -> None:
    event = make_event("order-7", 2, "paid")
    assert check_event(event) is None
    rng = random.Random(5)
    for field in ("id", "key", "status", "sum"):
        for mode in ("flip", "truncate"):
            damaged = dict(event, **{field: str(corrupt_value(event[field], mode, rng))})
            reason = check_event(damaged)
            assert reason is not None, (field, mode, damaged[field])
    assert check_event({k: v for k, v in event.items() if k != "key"}) == ("missing fields ['key']")
    assert "is not a number" in str(check_event(dict(event, seq="2x")))


@pytest.fixture
def refused_url() -> str:
    """A redis:// URL whose port refuses connections (a broker that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def test_publisher_queues_in_order_while_the_broker_is_down(refused_url: str) -> None:
    publisher = EventPublisher(refused_url, "events", limit=3, retry_every=0.02)
    try:
        start = time.monotonic()
        for seq in (1, 2, 3):
            publisher.publish(make_event("order-1", seq, "placed"))
        assert time.monotonic() - start < 2.0
        assert publisher.waiting == 3 and publisher.queued == 3 and publisher.sent == 0
        assert [e["seq"] for e in publisher._queue] == ["1", "2", "3"]
        with pytest.raises(BrokerUnavailable, match="3 events already waiting"):
            publisher.publish(make_event("order-1", 4, "placed"))
        assert not publisher.flush(0.1)
    finally:
        publisher.close()


def test_the_fragile_publisher_drops_what_it_could_not_send(refused_url: str) -> None:
    publisher = EventPublisher(refused_url, "events", buffer=False)
    try:
        publisher.publish(make_event("order-1", 1, "placed"))
        assert (publisher.waiting, publisher.dropped, publisher.errors) == (0, 1, 1)
    finally:
        publisher.close()


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(" 0.5 ") == 0.5
    assert retry_after_seconds("-4") == 0.0
    assert retry_after_seconds(None, default=2.0) == 2.0
    assert retry_after_seconds("tomorrow", default=2.0) == 2.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 30
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier) == 0.0


class _Throttling(BaseHTTPRequestHandler):
    requests = 0

    def do_POST(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def throttling_provider() -> Iterator[str]:
    """A payment provider that answers every charge 429 with Retry-After: 1."""
    _Throttling.requests = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_client_waits_out_retry_after_without_calling(throttling_provider: str) -> None:
    client = PaymentsClient(throttling_provider, Resilience())
    try:
        with pytest.raises(RateLimited, match=r"answered 429, retry after 1\.0s") as first:
            client.charge(1, 500)
        assert first.value.retry_after == 1.0
        with pytest.raises(RateLimited, match="retry after") as second:
            client.charge(2, 500)
        assert 0 < second.value.retry_after <= 1.0
        assert _Throttling.requests == 1  # the second charge never left the shop
        assert client.breaker_state == "closed"  # a 429 is not the provider failing
    finally:
        client.close()


def test_the_fragile_client_retries_a_429_like_a_5xx(throttling_provider: str) -> None:
    client = PaymentsClient(throttling_provider, Resilience.without({"retry_after"}))
    try:
        with pytest.raises(PaymentUnavailable, match="answered 429"):
            client.charge(1, 500)
        assert _Throttling.requests == 3  # every attempt, Retry-After ignored
    finally:
        client.close()
