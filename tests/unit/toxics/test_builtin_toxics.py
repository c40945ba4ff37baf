"""Each built-in toxic's behaviour, sans-IO, with an explicit clock."""

from __future__ import annotations

import pytest

from pytest_chaos.toxics import Chain, End, Piece

from ._helpers import chain, data_of, ends_of, link, run_until_idle, stage


def test_noop_passes_everything_at_once() -> None:
    s = stage("noop")
    s.accept(Piece(b"abc", 0.0), 0.0)
    s.accept(End("eof"), 0.0)
    assert s.poll(0.0) == [Piece(b"abc", 0.0), End("eof")]
    assert s.deadline() is None


def test_latency_holds_each_chunk_from_its_read_time() -> None:
    s = stage("latency", latency=100)
    s.accept(Piece(b"a", 0.0), 0.0)
    s.accept(Piece(b"b", 0.05), 0.05)
    assert s.poll(0.099) == []
    assert s.deadline() == pytest.approx(0.1)
    assert [p.data for p in s.poll(0.1)] == [b"a"]  # type: ignore[union-attr]
    # the second chunk waits from its own read time: throughput is not reduced
    assert s.deadline() == pytest.approx(0.15)
    assert [p.data for p in s.poll(0.1501)] == [b"b"]  # type: ignore[union-attr]


def test_latency_counts_from_the_read_even_when_it_arrives_late() -> None:
    s = stage("latency", latency=100)
    s.accept(Piece(b"a", 0.0), 0.08)  # read at 0, reached this stage at 0.08
    assert s.deadline() == pytest.approx(0.1)


def test_two_latencies_add_up() -> None:
    ch = chain(("latency", {"latency": 100}), ("latency", {"latency": 50}))
    ch.feed(Piece(b"x", 0.0), 0.0)
    out = run_until_idle(ch)
    assert len(out) == 1
    t, item = out[0]
    assert isinstance(item, Piece) and item.data == b"x"
    assert t == pytest.approx(0.15) and item.stamp == pytest.approx(0.15)


def test_jitter_stays_in_bounds_and_keeps_order() -> None:
    s = stage("latency", latency=100, jitter=50)
    for k in range(200):
        s.accept(Piece(bytes([k]), k * 0.001), k * 0.001)
    due = [t for t, _ in s._out]
    assert due == sorted(due)
    for k, t in enumerate(due):
        assert t >= k * 0.001 + 0.05 - 1e-9
        assert t <= max(due[: k + 1])
    assert max(t - k * 0.001 for k, t in enumerate(due)) <= 0.15 + 1e-9
    assert len({round(t - k * 0.001, 6) for k, t in enumerate(due)}) > 10  # it does vary


def test_bandwidth_releases_bytes_at_the_rate() -> None:
    ch = chain(("bandwidth", {"rate": 100}))  # 100 KB/s = 100,000 bytes/s
    ch.feed(Piece(b"x" * 50_000, 0.0), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"x" * 50_000
    assert out[-1][0] == pytest.approx(0.5)
    # cut into 100 ms slices, so bytes flow steadily
    assert [len(i.data) for _, i in out] == [10_000] * 5  # type: ignore[union-attr]
    assert [round(t, 6) for t, _ in out] == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_bandwidth_queues_chunks_behind_each_other_and_credits_no_idle_time() -> None:
    s = stage("bandwidth", rate=10)  # 10,000 bytes/s
    s.accept(Piece(b"a" * 1000, 0.0), 0.0)
    s.accept(Piece(b"b" * 1000, 0.0), 0.0)
    assert s.deadline() == pytest.approx(0.1)
    assert s.poll(0.1) == [Piece(b"a" * 1000, 0.0)]
    assert s.deadline() == pytest.approx(0.2)
    assert s.poll(1.0) == [Piece(b"b" * 1000, 0.0)]
    s.accept(Piece(b"c" * 1000, 5.0), 5.0)
    assert s.deadline() == pytest.approx(5.1)


def test_slow_close_passes_data_and_delays_the_close() -> None:
    ch = chain(("slow_close", {"delay": 300}))
    ch.feed(Piece(b"bye", 1.0), 1.0)
    ch.feed(End("eof"), 1.0)
    out = run_until_idle(ch, start=1.0)
    assert out[0] == (1.0, Piece(b"bye", 1.0))
    assert ends_of(out) == [(pytest.approx(1.3), "eof")]


def test_timeout_drops_data_and_closes_after_silence() -> None:
    s = stage("timeout", now=0.0, timeout=200)
    assert s.deadline() == pytest.approx(0.2)
    s.accept(Piece(b"lost", 0.1), 0.1)  # data re-arms the timer
    assert s.poll(0.25) == []
    assert s.deadline() == pytest.approx(0.3)
    assert s.poll(0.3001) == [End("close")]


def test_timeout_zero_never_closes_but_passes_the_end() -> None:
    s = stage("timeout", timeout=0)
    s.accept(Piece(b"lost", 0.0), 0.0)
    assert s.deadline() is None
    assert s.poll(1e9) == []
    s.accept(End("eof"), 5.0)
    assert s.poll(5.0) == [End("eof")]


def test_removing_a_timeout_closes_only_if_it_dropped_data() -> None:
    clean = stage("timeout", timeout=0)
    assert clean.drain() == [] and clean.on_remove() == []
    dirty = stage("timeout", timeout=0)
    dirty.accept(Piece(b"lost", 0.0), 0.0)
    assert dirty.drain() == []
    assert dirty.on_remove() == [End("close")]


def test_reset_peer_resets_after_the_first_data() -> None:
    s = stage("reset_peer", timeout=100)
    assert s.deadline() is None  # nothing happens before data
    s.accept(Piece(b"hello", 1.0), 1.0)
    s.accept(Piece(b"more", 1.05), 1.05)
    assert s.poll(1.09) == []
    assert s.poll(1.1) == [End("reset")]  # the data never went through


def test_reset_peer_also_fires_on_the_close() -> None:
    s = stage("reset_peer", timeout=0)
    s.accept(End("eof"), 2.0)
    assert s.poll(2.0) == [End("reset")]


def test_slicer_cuts_within_bounds_and_keeps_every_byte() -> None:
    ch = chain(("slicer", {"average_size": 10, "size_variation": 4, "delay": 1000}))
    payload = bytes(range(256)) * 4
    ch.feed(Piece(payload, 0.0), 0.0)
    out = run_until_idle(ch)
    sizes = [len(i.data) for _, i in out]  # type: ignore[union-attr]
    assert data_of(out) == payload
    assert all(6 <= n <= 14 for n in sizes[:-1])
    times = [t for t, _ in out]
    assert times[1] - times[0] == pytest.approx(0.001)  # delay is in microseconds


def test_limit_data_cuts_at_exactly_n_bytes_then_closes() -> None:
    ch = chain(("limit_data", {"bytes": 25}))
    for k in range(5):
        ch.feed(Piece(bytes([65 + k]) * 10, 0.0), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"A" * 10 + b"B" * 10 + b"C" * 5
    assert ends_of(out) == [(0.0, "close")]


def test_limit_data_keeps_its_count_when_restarted() -> None:
    cls_stage = stage("limit_data", bytes=10)
    cls_stage.accept(Piece(b"1234567", 0.0), 0.0)
    from pytest_chaos.toxics import get_toxic_class

    cls = get_toxic_class("limit_data")
    assert cls is not None
    again = cls.from_attributes({"bytes": 10}).start(link(), 0.0, cls_stage)
    again.accept(Piece(b"abcdef", 0.0), 0.0)
    items = again.poll(0.0)
    assert items == [Piece(b"abc", 0.0), End("close")]


def test_limit_data_zero_closes_on_first_data() -> None:
    s = stage("limit_data", bytes=0)
    s.accept(Piece(b"x", 0.0), 0.0)
    assert s.poll(0.0) == [End("close")]


def test_input_after_the_end_is_ignored() -> None:
    s = stage("latency", latency=10)
    s.accept(End("eof"), 0.0)
    s.accept(Piece(b"late", 0.0), 0.0)
    assert s.poll(1.0) == [End("eof")]


def test_chain_drain_hands_back_data_oldest_first() -> None:
    ch = chain(("latency", {"latency": 100}), ("bandwidth", {"rate": 1}))
    ch.feed(Piece(b"first", 0.0), 0.0)
    run_until_idle(ch, limit=0.1)  # "first" now sits in the bandwidth stage
    ch.feed(Piece(b"second", 0.1), 0.1)  # "second" sits in the latency stage
    assert [i.data for i in ch.drain()] == [b"first", b"second"]  # type: ignore[union-attr]
    assert ch.buffered() == 0


def test_chain_buffered_counts_held_bytes() -> None:
    ch = chain(("latency", {"latency": 100}))
    ch.feed(Piece(b"x" * 1000, 0.0), 0.0)
    assert ch.buffered() == 1000
    run_until_idle(ch)
    assert ch.buffered() == 0


def test_empty_stage_chain_is_allowed_for_drain() -> None:
    assert Chain([]).drain() == []


def test_slicing_is_lazy_and_bounded_per_poll() -> None:
    s = stage("slicer", average_size=1)
    s.accept(Piece(b"z" * 262_144, 0.0), 0.0)
    first = s.poll(0.0)
    assert len(first) == 1024  # one poll never returns more; the rest is due at once
    assert s.deadline() == 0.0
    assert s.buffered == 262_144 - 1024
    rest = s.drain()  # removal hands back the remainder in one piece
    assert rest == [Piece(b"z" * (262_144 - 1024), 0.0)]
    assert s.buffered == 0 and s.deadline() is None


def test_bandwidth_end_follows_the_last_slice() -> None:
    ch = chain(("bandwidth", {"rate": 10}))
    ch.feed(Piece(b"q" * 2500, 0.0), 0.0)
    ch.feed(End("eof"), 0.0)
    out = run_until_idle(ch)
    assert data_of(out) == b"q" * 2500
    assert ends_of(out) == [(pytest.approx(0.25), "eof")]
