"""Every test is exactly one of ``unit`` and ``live`` (tests/conftest.py's lists), so
``-m unit`` and ``-m live`` split the suite in two."""

from __future__ import annotations

import pytest

from .conftest import kind_of, unmarked_tests


def test_every_test_is_unit_or_live(request: pytest.FixtureRequest) -> None:
    unmarked = unmarked_tests(request.config)
    assert not unmarked, (
        "tests that are neither or both of unit and live (add their file to LIVE or UNIT "
        "in tests/conftest.py):\n" + "\n".join(unmarked)
    )


def test_the_most_specific_entry_wins() -> None:
    assert kind_of("toxics/test_latency.py") == "unit"
    assert kind_of("toxics/test_http_toxic.py") == "live"
    assert kind_of("plugin/test_marker.py") == "live"
    assert kind_of("nowhere/test_new.py") is None
