"""The rate-limit experiments bite: without Retry-After handling
(``SHOP_FRAGILE=retry_after``), the shop retries a 429 like a 5xx, and the experiment
that times requests at the proxy catches it with the gaps it measured.

The whole fragile build (``SHOP_FRAGILE=1``) failing all three experiments is checked
by test_suite_bites.py with the rest of the suite.
"""

from __future__ import annotations

from pathlib import Path

from tests.example.test_suite_bites import run_example_suite

TIMED = "test_rate_limit.py::test_shop_sends_nothing_before_retry_after_has_passed"


def test_ignoring_retry_after_is_caught_by_the_request_timing(tmp_path: Path) -> None:
    """``SHOP_FRAGILE=retry_after``: the timing experiment fails, naming the requests
    that came before Retry-After had passed."""
    run = run_example_suite(tmp_path, fragile="retry_after", select=[TIMED])
    assert set(run.outcomes) == {TIMED}, run.explain()
    outcome = run.outcomes[TIMED]
    assert outcome.result == "failed", f"{outcome!r}\n{run.explain()}"
    assert "requests before Retry-After had passed" in outcome.message, outcome.message
    assert "gaps between requests at the proxy were shorter than 1 s" in outcome.message
