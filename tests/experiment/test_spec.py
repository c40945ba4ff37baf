"""BlastRadius and marker parsing, without a pytest run."""

from __future__ import annotations

import pytest

from pytest_chaos import BlastRadius, ConfigurationError


def test_allows_matches_targets_patterns_and_exclusions() -> None:
    radius = BlastRadius(targets=["redis*", "pg"], exclude=["redis-replica"])
    assert radius.allows("redis") and radius.allows("redis-main") and radius.allows("pg")
    assert not radius.allows("redis-replica")
    assert not radius.allows("payments")
    assert radius.describe() == "['redis*', 'pg'] excluding ['redis-replica']"


def test_lists_become_tuples_so_the_spec_is_frozen_and_hashable() -> None:
    radius = BlastRadius(targets=["a"], exclude=["b"])
    assert radius.targets == ("a",) and radius.exclude == ("b",)
    assert hash(radius) == hash(BlastRadius(targets=("a",), exclude=("b",)))
    with pytest.raises(AttributeError):
        radius.targets = ("c",)  # type: ignore[misc]


def test_to_json_is_the_record_shape() -> None:
    radius = BlastRadius(targets=["a"], max_concurrent_faults=2, max_fault_seconds=3)
    assert radius.to_json() == {
        "targets": ["a"],
        "exclude": [],
        "max_concurrent_faults": 2,
        "max_fault_seconds": 3.0,
    }


@pytest.mark.parametrize(
    ("radius", "words"),
    [
        (BlastRadius(targets=[]), "blast_radius is empty"),
        (BlastRadius(targets="redis"), "must be a list of target names, got str"),
        (BlastRadius(targets=["a"], exclude="b"), "BlastRadius(exclude='b')"),
        (BlastRadius(targets=[""]), "entry '' is not a target name"),
        (BlastRadius(targets=[3]), "entry 3 is not a target name"),  # type: ignore[list-item]
        (BlastRadius(targets=["a"], max_concurrent_faults=0), "max_concurrent_faults=0"),
        (BlastRadius(targets=["a"], max_concurrent_faults=True), "max_concurrent_faults=True"),
        (BlastRadius(targets=["a"], max_concurrent_faults=1.5), "use a whole number >= 1"),  # type: ignore[arg-type]
        (BlastRadius(targets=["a"], max_fault_seconds=-1), "max_fault_seconds=-1"),
        (BlastRadius(targets=["a"], max_fault_seconds=float("inf")), "max_fault_seconds=inf"),
        (BlastRadius(targets=["a"], exclude=["a"]), "both in targets and in exclude"),
    ],
)
def test_validate_names_the_place_the_value_and_the_fix(radius: BlastRadius, words: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        radius.validate("test_x.py::test_y: @pytest.mark.chaos")
    message = str(info.value)
    assert message.startswith("test_x.py::test_y: @pytest.mark.chaos")
    assert words in message


def test_a_valid_radius_passes() -> None:
    BlastRadius(
        targets=["*"], exclude=["pg"], max_concurrent_faults=1, max_fault_seconds=0.5
    ).validate("here")
