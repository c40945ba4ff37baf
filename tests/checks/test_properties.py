"""Properties of the pure parts: percentiles, the steady-state verdict, snapshot diffs."""

from __future__ import annotations

import functools
import threading

import pytest

from pytest_chaos.checks import History
from pytest_chaos.checks._idempotent import diff
from pytest_chaos.checks._probe import Call, percentile
from pytest_chaos.checks._steady import Tolerances, judge

pytest.importorskip("hypothesis")
from hypothesis import given
from hypothesis import strategies as st

latencies = st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=200)


@given(latencies, st.floats(0, 100), st.floats(0, 100))
def test_percentile_is_a_sample_and_grows_with_q(values: list[float], a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert percentile(values, lo) in values
    assert percentile(values, lo) <= percentile(values, hi)
    assert percentile(values, 100) == max(values)


@given(
    st.lists(st.tuples(st.floats(0, 10, allow_nan=False), st.booleans()), min_size=1, max_size=100),
    st.floats(0, 1),
    st.floats(0.001, 10),
)
def test_the_verdict_follows_its_numbers(
    calls: list[tuple[float, bool]], rate: float, p99: float
) -> None:
    result = judge(
        [Call(float(i), lat, ok) for i, (lat, ok) in enumerate(calls)],
        Tolerances(p99=p99, max_error_rate=rate),
        duration=1.0,
    )
    errors = sum(1 for _, ok in calls if not ok)
    assert result.measured["errors"] == errors
    expected = errors / len(calls) <= rate and percentile([c[0] for c in calls], 99) <= p99
    assert result.passed is expected
    assert result.message.startswith("steady_state held" if expected else "steady_state violated")


values = st.one_of(st.integers(), st.text(max_size=5))


@given(
    st.one_of(
        st.dictionaries(st.text(max_size=3), values, max_size=5),
        st.lists(values, max_size=6),
    ),
    st.one_of(
        st.dictionaries(st.text(max_size=3), values, max_size=5),
        st.lists(values, max_size=6),
    ),
)
def test_diff_is_empty_exactly_when_equal(a: object, b: object) -> None:
    assert (diff(a, b) == "") is (a == b)


def test_history_records_from_many_threads() -> None:
    h = History()
    store: list[int] = []
    lock = threading.Lock()

    def write(v: int) -> None:
        with lock:
            store.append(v)

    threads = [
        threading.Thread(
            target=lambda i=i: [
                h.write("k", i * 100 + j, functools.partial(write, i * 100 + j)) for j in range(50)
            ]
        )
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(h.ops) == 200
    assert h.check({"k": store}).measured["ack"] == 200
