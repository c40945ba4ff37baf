from __future__ import annotations

import time

import pytest

from pytest_chaos.checks import RecoveryViolated, recovers
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


def test_recovers_measures_from_the_last_heal() -> None:
    tl = Timeline()
    tl.record("inject", "down", fault_id="f1")
    tl.record("heal", "down", fault_id="f1", by="test", duration=0.1)
    healthy_at = time.monotonic() + 0.2
    result = recovers(
        lambda: time.monotonic() >= healthy_at, within=3.0, consecutive=3, timeline=tl
    )
    assert result.passed
    seconds = result.measured["recovery_seconds"]
    assert 0.15 <= seconds <= 2.0
    assert tl.of_kind("check")[0].data["measured"]["recovery_seconds"] == seconds


def test_recovers_fails_with_the_time_waited() -> None:
    tl = Timeline()
    with pytest.raises(
        RecoveryViolated, match=r"not recovered 0\.\d\d s after the last heal, allowed 0\.30 s"
    ) as info:
        recovers(lambda: False, within=0.3, timeline=tl)
    assert info.value.measured["recovered"] is False
    assert info.value.measured["recovery_seconds"] >= 0.3
    assert tl.of_kind("check")[0].data["measured"]["recovery_seconds"] >= 0.3


def test_recovers_needs_k_in_a_row() -> None:
    n = 0

    def alternating() -> bool:
        nonlocal n
        n += 1
        return n % 2 == 0

    with pytest.raises(RecoveryViolated, match="never 2 in a row"):
        recovers(alternating, within=0.2, consecutive=2, interval=0.01)


def test_recovers_rejects_bad_arguments() -> None:
    with pytest.raises(CheckError, match="within=0"):
        recovers(lambda: True, within=0)


def test_recovers_called_too_late_is_a_check_error() -> None:
    tl = Timeline()
    tl.record("inject", "down", fault_id="f1")
    tl.record("heal", "down", fault_id="f1", by="test", duration=0.1)
    time.sleep(0.15)
    with pytest.raises(
        CheckError, match=r"called 0\.\d\d s after the last heal, later than within=0\.1"
    ):
        recovers(lambda: True, within=0.1, timeline=tl)
