"""Chaos experiments on the message bus: the shop's order events on a Redis Stream.

LinkedIn's Waterbear experiments on their message bus (broker failure, consumer lag,
duplicated, reordered and corrupted messages) and Slack's connection-drop storms, on a
real Redis (Streams, consumer groups, XAUTOCLAIM) and real consumer processes::

    EventPublisher --> chaos.proxy("broker")   --> Redis Stream
    worker-N       --> chaos.proxy("consumer") --> (consumer group)
                   --> PostgreSQL: one effect row per applied event, each order's state

The ground truth is what the consumers applied (read directly in PostgreSQL), counted
per event id: delivery is at least once, the effect must be exactly once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from example_suite.shop.broker import Broker
from example_suite.shop.events import make_event
from example_suite.shop.harness import ShopRequestFailed, create_database
from example_suite.shop.testbed import Backing, Shop
from pytest_chaos import Chaos, HistoryViolated
from pytest_chaos.experiment import Step
from pytest_chaos.services import ChaosServices, Service

STATUSES = ("placed", "paid", "packed", "shipped")
FAST_WORKER = {"SHOP_WORKER_CLAIM_IDLE_MS": "300", "SHOP_WORKER_CLAIM_EVERY": "0.1"}


@pytest.fixture
def broker(chaos: Chaos, chaos_services: ChaosServices, backing: Backing) -> Iterator[Broker]:
    """A fresh stream and consumer group, its two proxies and an effects database."""
    import os

    name = f"events_{uuid.uuid4().hex[:10]}"
    bed = Broker(
        services=chaos_services,
        redis_direct=f"redis://{backing.redis.address}/0",
        producer_proxy=chaos.proxy("broker", upstream=backing.redis),
        consumer_proxy=chaos.proxy("consumer", upstream=backing.redis),
        database_url=create_database(backing.postgres_admin_url, name),
        stream=name,
        group="order-effects",
        fragile=os.environ.get("SHOP_FRAGILE", ""),
    )
    try:
        yield bed
    finally:
        bed.close()


def order_events(orders: int, versions: int = 4, prefix: str = "order") -> list[dict[str, str]]:
    """``versions`` events per order, each order's in sequence, order after order."""
    return [
        make_event(f"{prefix}-{k}", seq, STATUSES[(seq - 1) % len(STATUSES)])
        for k in range(orders)
        for seq in range(1, versions + 1)
    ]


def wait_until_applied(broker: Broker, ids: set[str], timeout: float) -> float:
    """Wait until every event id was applied (at most ``timeout`` s), then until the
    group has consumed the whole stream, so that copies still on their way are counted
    too. The seconds until all were applied (``timeout`` if they were not)."""
    _, seconds = broker.wait_for(lambda: ids <= set(broker.effects()), timeout)
    if ids <= set(broker.effects()):
        broker.wait_for(broker.drained, 2.0)
    return seconds


def check_applied_once(
    chaos: Chaos, broker: Broker, acknowledged: list[dict[str, str]], *, within: float
) -> float:
    """The hypothesis of every experiment here, as a ``history`` check: each event the
    publisher acknowledged is applied (none lost), once (none duplicated), within
    ``within`` seconds. Run after the faults are healed; returns the seconds it took."""
    history = chaos.history()
    for event in acknowledged:
        history.record(event["key"], event["id"], "ack")
    seconds = wait_until_applied(broker, {e["id"] for e in acknowledged}, within)
    try:
        history.check(broker.applied_by_key(), target="consumer")
    except HistoryViolated as exc:
        exc.add_note(
            f"{broker.pending()} entries pending; workers: "
            + "; ".join(_state(broker, w) for w in broker.workers)
        )
        raise
    return seconds


def _state(broker: Broker, worker: Service) -> str:
    try:
        return f"{worker.name} {broker.worker_health(worker)}"
    except ShopRequestFailed as exc:
        return f"{worker.name} not answering ({exc})"


def per_key_order_broken(broker: Broker) -> dict[str, list[int]]:
    """Orders whose events were first applied out of sequence: key -> seqs as applied."""
    seen: dict[str, list[int]] = {}
    for key, seq in broker.applied_in_order():
        seen.setdefault(key, []).append(seq)
    return {k: s for k, s in seen.items() if s != sorted(s)}


@pytest.mark.chaos(blast_radius=["broker"])
def test_broker_down_loses_no_acknowledged_event(
    chaos: Chaos, broker: Broker, start_shop: Callable[..., Shop]
) -> None:
    """Hypothesis (Waterbear, broker failure): while the broker is unreachable, the order
    API still acknowledges orders within 1 s each (it queues their events instead of
    waiting on the broker), and the event of every acknowledged order is applied exactly
    once within 3 s of the broker's return."""
    shop = start_shop(
        extra_env={
            "SHOP_EVENTS_URL": f"redis://{broker.producer_proxy.address}/0",
            "SHOP_EVENTS_STREAM": broker.stream,
        }
    )
    broker.start_worker()
    orders: list[dict[str, object]] = []
    slowest = 0.0
    with broker.producer_proxy.down():
        for _ in range(20):
            start = time.monotonic()
            orders.append(shop.place_order(customer="broker-down"))
            slowest = max(slowest, time.monotonic() - start)
        waiting = shop.health()["events_waiting"]
    assert slowest < 1.0, f"an order took {slowest:.2f} s while the broker was down"
    history = chaos.history()
    keys = {f"order-{o['id']}" for o in orders}
    for key in keys:
        history.record(key, 1, "ack")  # the order's first event: seq 1, "placed"
    _, seconds = broker.wait_for(lambda: keys <= set(broker.effects_by_key()), 3.0)
    broker.wait_for(broker.drained, 2.0)
    try:
        history.check(broker.applied_by_key("seq"), target="consumer")
    except HistoryViolated as exc:
        exc.add_note(f"{waiting} events were queued in the order API at the heal")
        raise
    chaos.timeline.record(
        "note", "events_caught_up", target="broker", seconds=round(seconds, 3), queued=waiting
    )


@pytest.mark.chaos(blast_radius=["order-events"])
def test_duplicated_and_reordered_events_take_effect_once_in_version_order(
    chaos: Chaos, broker: Broker
) -> None:
    """Hypothesis (Waterbear, duplicated and reordered messages): when every event is
    published twice and events overtake each other by up to 3 places, each event takes
    effect once and every order ends in its latest version (late events change nothing)."""
    broker.start_worker()
    events = order_events(20, prefix="dup")
    shuffled = chaos.reorder(events, window=3, target="order-events")
    position = {e["id"]: i for i, e in enumerate(shuffled)}
    overtaken = [
        e["key"]
        for e in events
        if e["seq"] == "4"
        and any(position[o["id"]] > position[e["id"]] for o in events if o["key"] == e["key"])
    ]
    assert overtaken, "the reorder left every order's last version last: nothing to test"
    with chaos.duplicate(broker.publisher.publish, copies=2, target="order-events") as publish:
        for event in shuffled:
            publish(event)
    check_applied_once(chaos, broker, events, within=3.0)
    state = broker.order_state()
    stale = {k: v for k, v in state.items() if v[0] != 4}
    assert not stale, (
        f"{len(stale)} of {len(state)} orders ended in an older version than their last "
        f"event (seq 4, {STATUSES[3]!r}): {dict(list(stale.items())[:4])}; reordered "
        f"orders whose last version came early: {overtaken[:5]}"
    )


@pytest.mark.chaos(blast_radius=["worker-1"])
def test_a_consumer_killed_mid_batch_has_its_events_reclaimed_and_applied_once(
    chaos: Chaos, broker: Broker
) -> None:
    """Hypothesis: when a consumer is killed (SIGKILL) halfway through a batch, another
    consumer of the group reclaims its pending events (XAUTOCLAIM after 300 ms idle) and
    every event is applied exactly once within 3 s, with nothing left pending."""
    slow = broker.start_worker("worker-1", SHOP_WORKER_DELAY="0.05", SHOP_WORKER_BATCH="10")
    events = order_events(8, prefix="kill")
    for event in events:
        broker.publisher.publish(event)
    started, _ = broker.wait_for(lambda: sum(broker.effects().values()) >= 3, 5.0, every=0.01)
    assert started, "worker-1 applied nothing within 5 s: nothing to kill mid-batch"
    with chaos.kill(slow):
        applied_before = sum(broker.effects().values())
        assert 0 < applied_before < len(events), f"{applied_before} applied: not mid-batch"
        worker2 = broker.start_worker("worker-2", **FAST_WORKER)
        # judged while worker-1 is still dead: worker-2 alone must finish its batch
        seconds = wait_until_applied(broker, {e["id"] for e in events}, 3.0)
        pending = broker.pending()
        reclaimed = broker.worker_health(worker2)["reclaimed"]
    check_applied_once(chaos, broker, events, within=0.5)
    assert pending == 0, f"{pending} entries still pending while worker-1 was dead"
    assert reclaimed > 0, "worker-2 reclaimed nothing, yet every event was applied"
    chaos.timeline.record(
        "note", "reclaimed", target="worker-2", entries=reclaimed, seconds=round(seconds, 3)
    )


@pytest.mark.chaos(blast_radius=["order-events"])
def test_a_corrupted_event_goes_to_the_dead_letter_stream_and_the_consumer_keeps_going(
    chaos: Chaos, broker: Broker
) -> None:
    """Hypothesis (Waterbear, corrupted messages): events damaged on the way (a bit of
    their status flipped, 25% of them) fail their checksum and land in the dead-letter
    stream with the reason; every sound event is applied once, and the consumer is still
    consuming afterwards."""
    worker = broker.start_worker()
    events = order_events(10, prefix="bad")
    with chaos.corrupt(
        broker.publisher.publish, field="status", mode="flip", rate=0.25, target="order-events"
    ) as publish:
        for event in events:
            publish(event)
    damaged = {c.original["id"] for c in publish.corruptions}  # type: ignore[index]
    assert damaged, "no event was corrupted: nothing to test"
    sound = [e for e in events if e["id"] not in damaged]
    after = make_event("bad-after", 1, "placed")
    broker.publisher.publish(after)  # published after the poison: still consumed
    wait_until_applied(broker, {e["id"] for e in [*sound, after]}, 3.0)
    try:
        health = broker.worker_health(worker)
    except ShopRequestFailed as exc:
        raise AssertionError(
            f"the consumer stopped at a corrupted event ({len(damaged)} damaged of "
            f"{len(events)}): {worker.name} is not answering ({exc})"
        ) from None
    check_applied_once(chaos, broker, [*sound, after], within=0.5)
    dead = broker.dead_letters()
    dead_ids = Counter(d["id"] for d in dead)
    assert set(dead_ids) == damaged and all(n == 1 for n in dead_ids.values()), (
        f"dead letters {dict(dead_ids)} do not match the {len(damaged)} corrupted events "
        f"{sorted(damaged)}"
    )
    assert all("checksum mismatch" in d["reason"] for d in dead), dead
    assert health["dead_lettered"] == len(damaged), health


@pytest.mark.chaos(blast_radius=["consumer"])
def test_consumer_lag_stays_bounded_on_a_slow_link_and_catches_up_after(
    chaos: Chaos, broker: Broker
) -> None:
    """Hypothesis (Waterbear, consumer lag): with 30 ms added to every answer on the
    consumer's link while the shop publishes 100 events/s for 2 s, the lag (events
    acknowledged by the publisher, not yet applied) stays at most 60 (0.6 s of traffic),
    and it is back to 0 within 3 s of the heal."""
    broker.start_worker()
    events = order_events(50, prefix="lag")
    lags: list[int] = []
    published = 0

    def sample() -> None:
        lags.append(published - len(broker.effects()))

    with broker.consumer_proxy.latency(30):
        start = time.monotonic()
        for i, event in enumerate(events):
            broker.publisher.publish(event)
            published += 1
            if i % 10 == 0:
                sample()
            time.sleep(max(0.0, start + (i + 1) / 100 - time.monotonic()))
        sample()
    worst = max(lags)
    assert worst <= 60, f"consumer lag reached {worst} events during the slowdown: {lags}"
    caught_up, seconds = broker.wait_for(lambda: len(broker.effects()) >= len(events), 3.0)
    assert caught_up, (
        f"lag still {len(events) - len(broker.effects())} events 3 s after the heal "
        f"(lag during the slowdown: {lags})"
    )
    check_applied_once(chaos, broker, events, within=1.0)
    chaos.timeline.record(
        "note", "consumer_lag", target="consumer", max_lag=worst, catch_up_s=round(seconds, 3)
    )


@pytest.mark.chaos(blast_radius=["broker", "consumer"])
def test_connection_drop_storm_loses_nothing_and_keeps_order_per_key(
    chaos: Chaos, broker: Broker
) -> None:
    """Hypothesis (Slack, connection-drop storms): when every connection to the broker is
    reset 100 ms out of every 300 ms for 2.4 s, on the publisher's side and on the
    consumer's, every event published meanwhile is applied once within 3 s, and each
    order's events take effect in their order."""
    broker.start_worker()
    events = order_events(12, versions=5, prefix="storm")
    steps = [
        Step(at=t * 0.3, fault=proxy.reset_peer, for_=0.1, name=f"reset {proxy.name} #{t}")
        for t in range(8)
        for proxy in (broker.producer_proxy, broker.consumer_proxy)
    ]
    acknowledged: list[dict[str, str]] = []

    def publish_all() -> None:
        # orders interleaved: each order's versions are spread over the whole storm
        for seq in range(5):
            for k in range(12):
                event = events[k * 5 + seq]
                broker.publisher.publish(event)
                acknowledged.append(event)
                time.sleep(0.035)

    with chaos.schedule(steps, time_scale=1.0):
        producer = threading.Thread(target=publish_all, name="storm-publisher")
        producer.start()
        producer.join()
    seconds = check_applied_once(chaos, broker, acknowledged, within=3.0)
    worker = broker.worker_health(broker.workers[0])
    chaos.timeline.record(
        "note",
        "storm_survived",
        target="consumer",
        caught_up_s=round(seconds, 3),
        publisher_errors=broker.publisher.errors,
        publisher_queued=broker.publisher.queued,
        consumer_errors=worker["errors"],
        redelivered=worker["redelivered"],
        duplicates=worker["duplicates"],
    )
    broken = per_key_order_broken(broker)
    assert not broken, (
        f"{len(broken)} orders' events took effect out of order: {dict(list(broken.items())[:4])}"
    )
