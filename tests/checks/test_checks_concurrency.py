"""retries(concurrency=N) and steady_state(concurrency=N) drive the probe from N
threads, so a bug that shows only under concurrent load is provoked, and a system
without it raises no alarm. Over fakes: a client that misbehaves only while another
call is in flight."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_chaos.checks import RetriesViolated, SteadyStateViolated, retries, steady_state
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


class Client:
    """One call of a system; ``racy``: while another call is in flight it retries three
    times (a retry multiplied by contention on a shared pool) and fails."""

    def __init__(self, racy: bool) -> None:
        self.racy = racy
        self.lock = threading.Lock()
        self.in_flight = 0
        self.attempts = 0
        self.threads: set[str] = set()

    def stats(self) -> dict[str, int]:
        with self.lock:
            return {"connections_accepted": self.attempts}

    def call(self) -> bool:
        with self.lock:
            self.in_flight += 1
            busy = self.in_flight > 1
            self.threads.add(threading.current_thread().name)
        try:
            tries = 3 if busy and self.racy else 1
            with self.lock:
                self.attempts += tries
            time.sleep(0.05)  # calls overlap under concurrency
            return not (busy and self.racy)
        finally:
            with self.lock:
                self.in_flight -= 1


def _injected() -> Timeline:
    timeline = Timeline()
    timeline.record("inject", "latency", target="db", fault_id="f1")
    return timeline


def test_retries_under_concurrency_catch_a_load_dependent_storm() -> None:
    client = Client(racy=True)
    assert retries(client.call, proxy=client, max_attempts_per_call=1.5, calls=8).passed
    with pytest.raises(RetriesViolated, match=r"per call > allowed 1\.5") as info:
        retries(client.call, proxy=client, max_attempts_per_call=1.5, calls=8, concurrency=4)
    assert info.value.measured["concurrency"] == 4
    assert len(client.threads) > 1


def test_retries_under_concurrency_no_false_alarm() -> None:
    client = Client(racy=False)
    result = retries(client.call, proxy=client, max_attempts_per_call=1.0, calls=8, concurrency=4)
    assert result.measured["attempts"] == 8 and result.measured["concurrency"] == 4
    assert len(client.threads) == 4


def test_retries_concurrency_must_be_a_count() -> None:
    client = Client(racy=False)
    with pytest.raises(CheckError, match="concurrency=0"):
        retries(client.call, proxy=client, max_attempts_per_call=1, concurrency=0)


def test_steady_state_under_concurrency_catches_a_load_dependent_failure() -> None:
    client = Client(racy=True)
    assert steady_state(client.call, calls=6, timeline=_injected()).passed
    with pytest.raises(SteadyStateViolated, match="error rate"):
        steady_state(client.call, calls=12, concurrency=4, timeline=_injected())


def test_steady_state_under_concurrency_no_false_alarm() -> None:
    client = Client(racy=False)
    result = steady_state(client.call, calls=12, concurrency=4, timeline=_injected())
    assert result.measured["calls"] == 12 and len(client.threads) == 4
