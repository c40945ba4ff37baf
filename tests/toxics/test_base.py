"""Attribute validation, JSON shape and the registry."""

from __future__ import annotations

from typing import ClassVar

import pytest

from pytest_chaos.toxics import (
    Attribute,
    LinkContext,
    Stage,
    Toxic,
    ToxicConfigError,
    get_toxic_class,
    register_toxic,
    toxic_types,
)

BUILTIN = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "noop": {},
}


def _cls(name: str) -> type[Toxic]:
    cls = get_toxic_class(name)
    assert cls is not None, name
    return cls


def test_every_builtin_type_is_registered() -> None:
    assert set(BUILTIN) <= set(toxic_types())


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_json_lists_every_attribute_zeros_included(name: str) -> None:
    given = {"rate": 1} if name == "bandwidth" else {}
    if name == "slicer":
        given = {"average_size": 1}
    toxic = _cls(name).from_attributes(given)
    assert toxic.to_json() == {**BUILTIN[name], **given}


@pytest.mark.parametrize("bad", [1.5, 1.0, "10", True, None.__class__, [1], 2**63])
def test_wrong_types_are_a_bad_request_body(bad: object) -> None:
    with pytest.raises(ToxicConfigError) as info:
        _cls("latency").from_attributes({"latency": bad})
    message = str(info.value)
    assert message.startswith("bad request body: ")
    assert "'latency'" in message


def test_negative_values_name_the_attribute_the_rule_and_the_fix() -> None:
    with pytest.raises(ToxicConfigError) as info:
        _cls("latency").from_attributes({"jitter": -5})
    message = str(info.value)
    assert "'jitter'" in message and ">= 0" in message and "-5" in message


@pytest.mark.parametrize("rate", [0, -1])
def test_bandwidth_rate_must_be_positive(rate: int) -> None:
    with pytest.raises(ToxicConfigError, match=r"'rate'.*must be > 0.*use at least 1"):
        _cls("bandwidth").from_attributes({"rate": rate})


def test_slicer_average_size_zero_is_refused() -> None:
    with pytest.raises(ToxicConfigError, match=r"'average_size'.*must be > 0"):
        _cls("slicer").from_attributes({"average_size": 0, "delay": 10})


def test_keys_match_case_insensitively_and_unknown_or_null_are_ignored() -> None:
    toxic = _cls("latency").from_attributes({"LATENCY": 5, "Jitter": None, "other": "x"})
    assert toxic.to_json() == {"latency": 5, "jitter": 0}


def test_update_merges_into_current_values() -> None:
    cls = _cls("latency")
    first = cls.from_attributes({"latency": 100, "jitter": 10})
    second = cls.from_attributes({"jitter": 20}, first)
    assert second.to_json() == {"latency": 100, "jitter": 20}
    assert first.to_json() == {"latency": 100, "jitter": 10}  # snapshots are immutable


def test_repr_shows_attributes() -> None:
    assert repr(_cls("latency").from_attributes({"latency": 7})) == (
        "<LatencyToxic latency latency=7 jitter=0>"
    )


class _Custom(Toxic):
    type_name = "test_custom_toxic"
    attributes: ClassVar[tuple[Attribute, ...]] = (Attribute("size", unit="bytes"),)

    def start(self, link: LinkContext, now: float, previous: Stage | None) -> Stage:
        return Stage()


def test_register_a_new_type() -> None:
    register_toxic(_Custom)
    assert get_toxic_class("test_custom_toxic") is _Custom
    register_toxic(_Custom)  # the same class again is fine

    class Other(_Custom):
        pass

    with pytest.raises(ValueError, match=r"already registered.*replace=True"):
        register_toxic(Other)


def test_register_refuses_what_is_not_a_toxic() -> None:
    with pytest.raises(TypeError, match="Toxic subclass"):
        register_toxic(int)  # type: ignore[arg-type]

    class Nameless(Toxic):
        pass

    with pytest.raises(ValueError, match="type_name"):
        register_toxic(Nameless)
