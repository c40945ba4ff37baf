"""Exploration finds the shop's missing protections: with one protection removed
(``SHOP_FRAGILE=<name>``), a cell of example_suite/test_explore.py fails, and its
message in the resilience matrix names that protection's failure.

Each run selects the items of one cell and its baseline by node id (a cell costs a
shop start) and reads the matrix from the JSON journal, as a user's tool would.

``breaker`` and ``backoff`` are found by the same cell, told apart by its message: with
no breaker, four checkouts on a failing provider make 3 attempts each; with no retry
discipline, one checkout makes 5 back to back (the breaker then hides the rest).

``durability`` (commits not durable) loses data only when PostgreSQL crashes: the
checkout explores PostgreSQL as a ``service`` target, whose ``crash`` cell SIGKILLs the
server mid-traffic and restarts it, and ``chaos.history`` finds the acknowledged orders
it lost.

``cache_errors`` (a Redis error other than a lost connection fails the request) is
found by a resource fault: browsing explores Redis as a ``service`` target whose cell
``memory_limit:4MiB fill=true`` fills it to its ``maxmemory``, and the page the shop
caches fails with a 500.

Gaps, stated rather than hidden: ``pool`` is not found. Without a bounded pool the shop
answers 503 when PostgreSQL has no free slot, and a clean 503 is what the checkout
scenario accepts; test_resources.py catches it with an error budget. The other
protections guard parts of the shop that browse, checkout and pay do not use (events,
replicas, zones, the scheduler).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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
    # no stale reads: with the cache and the database both down, browsing answers 503
    # (a gap only two faults together open: a pair of the exploration)
    "stale_reads": (
        "test_explore_browse_pairs",
        "redis-down+postgres-down",
        ("steady_state violated", "GET /products/mug -> 503", "database unavailable"),
    ),
    # a 429 retried like a 5xx: the rate-limited provider gets 3 attempts for a checkout
    "retry_after": (
        "test_explore_pay",
        "payments-http_error-429",
        ("retries violated", "per call > allowed 1 ("),
    ),
    # no retry discipline: one checkout on a failing provider makes 5 immediate attempts
    # (the breaker still cuts the next checkouts off, so the average alone hides it)
    "backoff": (
        "test_explore_pay",
        "payments-http_error-503",
        ("retries violated", "5 attempts reached 'payments' for 1 calls", "> allowed 3 ("),
    ),
    # any Redis error but a lost connection fails the request: Redis out of memory
    # refuses the cache write after a miss, and the product page answers 500
    "cache_errors": (
        "test_explore_browse",
        "redis-memory_limit-4MiB-fill-true",
        ("steady_state violated", "GET /products/mug -> 500"),
    ),
    # synchronous_commit=off: PostgreSQL crashes mid-traffic and orders it acknowledged
    # are gone after its restart
    "durability": (
        "test_explore_checkout",
        "postgres-crash",
        ("history violated", "acknowledged writes lost", "key 'orders'"),
    ),
}
GAPS = {
    "pool": "a full PostgreSQL makes a pool-less shop answer 503, which checkout accepts",
}


def test_the_protections_named_here_exist() -> None:
    # protections added later (other experiments guard them) are not claimed here
    assert set(CATCHES) | set(GAPS) <= set(PROTECTIONS)
    assert not set(CATCHES) & set(GAPS)


def _explore(tmp_path: Path, fragile: str, cells: dict[str, list[str]]) -> dict[str, Any]:
    """Run the cells of each test, and its baseline, against the build without
    ``fragile`` (one pytest run); test -> {cell: matrix cell}, from the journal."""
    journal = tmp_path / "journal"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT_TEST", "PYTEST_ADDOPTS"))
    }
    env["SHOP_FRAGILE"] = fragile
    nodeids = [
        f"{TEST}{test}[{c}]" for test, wanted in cells.items() for c in ("baseline", *wanted)
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "chaos",
            "-p",
            "no:cacheprovider",
            f"--chaos-journal={journal}",
            f"--basetemp={tmp_path / 'basetemp'}",
            # the cells are chosen by node id: the repository's budget must not thin them
            "--chaos-explore-budget=all",
            *nodeids,
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
    return {
        m["test"].removeprefix(TEST): {c["cell"]: c for c in m["cells"] if c["status"] != "not run"}
        for m in json.loads(index.read_text())["explore"]
    }


@pytest.mark.parametrize("protection", sorted(CATCHES))
def test_exploration_finds_the_missing_protection(tmp_path: Path, protection: str) -> None:
    test, cell, phrases = CATCHES[protection]
    cells = _explore(tmp_path, protection, {test: [cell]})[test]
    assert set(cells) == {"baseline", cell}, cells
    assert cells["baseline"]["status"] == "pass", cells  # the fault is what breaks it
    found = cells[cell]
    assert found["status"] == "fail", found
    for phrase in phrases:
        assert phrase in found["message"], (phrase, found)


def test_the_catching_cells_pass_on_the_resilient_shop(tmp_path: Path) -> None:
    """No false alarm: the same cells hold when every protection is in place."""
    wanted: dict[str, list[str]] = {}
    for test, cell, _ in CATCHES.values():
        if cell not in wanted.setdefault(test, []):  # one cell may find two protections
            wanted[test].append(cell)
    matrices = _explore(tmp_path, "0", wanted)
    assert set(matrices) == set(wanted)
    for test, cells in matrices.items():
        assert set(cells) == {"baseline", *wanted[test]}, cells
        assert {c["status"] for c in cells.values()} == {"pass"}, cells
