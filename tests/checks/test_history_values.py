"""history.write(key, fn): the value a write carries may be assigned by the server."""

from __future__ import annotations

import itertools

import pytest

from pytest_chaos.checks import History, HistoryViolated
from pytest_chaos.errors import CheckError


class Orders:
    """A service that assigns order ids, like a 201 body with the new id."""

    def __init__(self) -> None:
        self.ids = itertools.count(1001)
        self.stored: list[int] = []
        self.mode = "ok"

    def create(self) -> int:
        order_id = next(self.ids)
        if self.mode == "timeout-after-commit":
            self.stored.append(order_id)
            raise TimeoutError("timed out")  # stored, but the client never heard the id
        if self.mode == "refused":
            raise ConnectionRefusedError("refused")
        if self.mode != "lose":
            self.stored.append(order_id)
        return order_id  # "lose": acknowledged, never stored


def test_the_value_is_taken_from_the_return_of_the_write() -> None:
    orders = Orders()
    history = History()
    ops = [history.write("orders", orders.create) for _ in range(3)]
    assert [op.value for op in ops] == [1001, 1002, 1003]
    assert [op.outcome for op in ops] == ["ack"] * 3
    result = history.check(lambda key: orders.stored)
    assert result.passed and "3 writes: 3 ack" in result.message


def test_a_server_assigned_id_that_was_acknowledged_and_lost_is_named() -> None:
    orders = Orders()
    history = History()
    history.write("orders", orders.create)
    orders.mode = "lose"
    history.write("orders", fn=orders.create)
    with pytest.raises(
        HistoryViolated, match=r"1 of 2 acknowledged writes lost \(key 'orders': 1002\)"
    ):
        history.check(lambda key: orders.stored)


def test_an_unknown_write_whose_id_shows_up_is_not_a_duplicate() -> None:
    orders = Orders()
    history = History()
    history.write("orders", orders.create)
    orders.mode = "timeout-after-commit"
    op = history.write("orders", orders.create)
    assert (op.outcome, op.value, op.value_known) == ("unknown", None, False)
    orders.mode = "refused"
    assert history.write("orders", orders.create).outcome == "fail"
    result = history.check(lambda key: orders.stored)
    assert result.passed, result.message
    assert "1 unknown (1 of those present)" in result.message
    # an id nobody could have written is still reported
    with pytest.raises(HistoryViolated, match=r"9999 present 1x, written 0x"):
        history.check(lambda key: [*orders.stored, 9999])


def test_the_old_form_with_a_value_still_works() -> None:
    rows: list[str] = []
    history = History()
    history.write("k", "v1", lambda: rows.append("v1"))
    history.write("k", value="v2", fn=lambda: rows.append("v2"))
    assert [op.value for op in history.ops] == ["v1", "v2"]
    assert history.check({"k": rows}).passed


@pytest.mark.parametrize(
    ("returned", "said"),
    [(None, "fn returned None"), (True, "fn returned True"), ({"id": 1}, "not hashable")],
)
def test_a_write_that_returns_no_usable_value_says_how_to_fix_it(
    returned: object, said: str
) -> None:
    with pytest.raises(CheckError, match=said) as info:
        History().write("orders", lambda: returned)
    assert "return the value the system assigned" in str(info.value)
    assert "write(key, value, fn)" in str(info.value)


def test_a_write_without_a_function_says_both_forms() -> None:
    with pytest.raises(CheckError, match=r"write\(key, fn\).*write\(key, value, fn\)"):
        History().write("orders", "v1")
