"""Exploration finds the shop's missing protections: with one protection removed
(``SHOP_FRAGILE=<name>``), a cell of example_suite/test_explore.py fails, and its
message in the resilience matrix names that protection's failure.

Each run selects the exploration items of one cell with ``-k`` (a cell costs a shop
start) and reads the matrix from the JSON journal, as a user's tool would.

Gaps, stated rather than hidden: ``durability`` (commits not durable) loses data only
when PostgreSQL crashes, which no proxy fault does (test_database.py kills the server
for it); ``backoff`` (5 immediate attempts) is cut off by the breaker, so attempts per
call stay bounded and no hypothesis of the scenarios tells it apart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from example_suite.shop.config import PROTECTIONS  # noqa: E402

TEST = "example_suite/test_explore.py::"

# protection -> (explored test, cell, phrases the cell's message must contain)
CATCHES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # no Redis timeout: a black-holed Redis hangs browsing
    "timeouts": (
        "test_explore_browse",
        "redis-timeout",
        ("steady_state violated", "ReadTimeout"),
    ),
    # no breaker: every payment on a failing provider is retried 3 times
    "breaker": (
        "test_explore_pay",
        "payments-http_error-503",
        ("retries violated", "3.0 per call > allowed 1.5"),
    ),
    # no Idempotency-Key on charges: the duplicated request charges twice
    "idempotency": (
        "test_explore_pay",
        "payments-http_duplicate",
        ("orders charged more than once",),
    ),
}
GAPS = {
    "durability": "needs a database crash (chaos.kill), not a proxy fault",
    "backoff": "the breaker still bounds attempts per call",
}


def test_the_protections_named_here_exist() -> None:
    # protections added later (other experiments guard them) are not claimed here
    assert set(CATCHES) | set(GAPS) <= set(PROTECTIONS)
    assert not set(CATCHES) & set(GAPS)


def _explore(tmp_path: Path, fragile: str, test: str, cell: str) -> dict[str, dict[str, str]]:
    """Run the cell (and its test's baseline) against the build without ``fragile``;
    the cells that ran, from the journal's matrix."""
    journal = tmp_path / "journal"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"))
    }
    env["SHOP_FRAGILE"] = fragile
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "example_suite/test_explore.py",
            "-m",
            "chaos",
            "-p",
            "no:cacheprovider",
            "-k",
            f"{test} and ({cell} or baseline)",
            f"--chaos-journal={journal}",
            f"--basetemp={tmp_path / 'basetemp'}",
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    index = journal / "index.json"
    assert index.exists(), proc.stdout[-4000:] + proc.stderr[-2000:]
    matrices = {m["test"]: m for m in json.loads(index.read_text())["explore"]}
    matrix = matrices[TEST + test]
    return {c["cell"]: c for c in matrix["cells"] if c["status"] != "not run"}


@pytest.mark.parametrize("protection", sorted(CATCHES))
def test_exploration_finds_the_missing_protection(tmp_path: Path, protection: str) -> None:
    test, cell, phrases = CATCHES[protection]
    cells = _explore(tmp_path, protection, test, cell)
    assert set(cells) == {"baseline", cell}, cells
    assert cells["baseline"]["status"] == "pass", cells  # the fault is what breaks it
    found = cells[cell]
    assert found["status"] == "fail", found
    for phrase in phrases:
        assert phrase in found["message"], (phrase, found)


def test_the_catching_cells_pass_on_the_resilient_shop(tmp_path: Path) -> None:
    """No false alarm: the same cells hold when every protection is in place."""
    for test in sorted({t for t, _, _ in CATCHES.values()}):
        wanted = sorted(c for t, c, _ in CATCHES.values() if t == test)
        cells = _explore(tmp_path / test, "0", test, " or ".join(wanted))
        assert set(cells) == {"baseline", *wanted}, cells
        assert {c["status"] for c in cells.values()} == {"pass"}, cells
