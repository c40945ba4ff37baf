from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from pytest_chaos.checks import IdempotencyViolated, idempotent
from pytest_chaos.checks._idempotent import diff
from pytest_chaos.errors import CheckError
from pytest_chaos.timeline import Timeline


def test_diff_shows_what_changed() -> None:
    assert diff({"a": 1}, {"a": 1}) == ""
    assert diff({"a": 1}, {"a": 2, "b": 3}) == "+ 'b': 3; ~ 'a': 1 -> 2"
    assert diff([1], [1, 1, 2]) == "+ 1; + 2"
    assert diff([1, 2], [2, 1]).startswith("same items, different order")
    assert diff(1, 2) == "1 -> 2"


def test_an_idempotent_action_passes() -> None:
    charges: dict[str, int] = {}
    result = idempotent(
        lambda: charges.setdefault("order-1", 100), state=lambda: dict(charges), times=3
    )
    assert result.passed and "+ 'order-1': 100" in result.message


def test_a_new_record_per_duplicate_is_caught_with_the_difference() -> None:
    rows: list[str] = []
    tl = Timeline()
    with pytest.raises(
        IdempotencyViolated,
        match=r"2 replay\(s\) of the action changed the state again: \+ 'charge' x2",
    ) as info:
        idempotent(lambda: rows.append("charge"), state=lambda: list(rows), times=3, timeline=tl)
    assert info.value.measured["effect"] == "+ 'charge'"
    assert len(tl.samples) == 3 and tl.of_kind("check")[0].data["passed"] is False


def test_via_is_active_only_during_the_first_delivery() -> None:
    rows: list[str] = []
    active: list[bool] = []
    copies = 1

    @contextlib.contextmanager
    def duplicator() -> Iterator[None]:
        nonlocal copies
        copies = 2
        try:
            yield
        finally:
            copies = 1

    def action() -> None:
        active.append(copies == 2)
        for _ in range(copies):
            rows.append("r")

    with pytest.raises(IdempotencyViolated):
        idempotent(action, state=lambda: list(rows), via=duplicator)
    assert active == [True, False]
    assert rows == ["r", "r", "r"]


def test_no_visible_effect_is_a_check_error() -> None:
    with pytest.raises(CheckError, match="changed nothing visible"):
        idempotent(lambda: None, state=lambda: 0)


def test_an_undeclared_action_error_is_a_check_error_and_declared_ones_pass() -> None:
    seen: set[str] = set()

    def action() -> None:
        if "k" in seen:
            raise ValueError("duplicate rejected")
        seen.add("k")

    with pytest.raises(CheckError, match="ValueError"):
        idempotent(action, state=lambda: set(seen))
    seen.clear()
    result = idempotent(action, state=lambda: set(seen), failures=(ValueError,))
    assert result.measured["errors"] == ["replay: ValueError: duplicate rejected"]
