"""Hypothesis in chaos tests: ``--chaos-seed`` seeds every ``@given`` test that uses the
``chaos`` fixture, so one seed replays the fault schedules a run generated.

The seed of a test is derived from the run's seed and the test's node id (as
``chaos.rng`` is), applied just before the test runs (as ``hypothesis.seed`` would,
without turning the example database off). A test with its own ``@seed(...)`` or
``settings(derandomize=True)``, or a run with ``--hypothesis-seed``, keeps what it asked
for. Hypothesis's example database still works: a failure saved by an earlier run is
replayed first, whatever the seed. Hypothesis is imported only for a test that is one.
"""

from __future__ import annotations

import hashlib

import pytest

from pytest_chaos.plugin._session import SESSION_KEY

__all__ = ["hypothesis_seed"]

#: marks a seed this plugin applied (so that it is replaced, test after test)
_APPLIED = "_pytest_chaos_hypothesis_seed"


def hypothesis_seed(run_seed: int, nodeid: str) -> int:
    """The Hypothesis seed of test ``nodeid`` in a run seeded ``run_seed``."""
    digest = hashlib.sha256(f"{run_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Seed a Hypothesis chaos test from ``--chaos-seed``."""
    test = getattr(item, "obj", None)
    if test is None or not getattr(test, "is_hypothesis_test", False):
        return
    if "chaos" not in getattr(item, "fixturenames", ()):
        return
    if item.config.getoption("hypothesis_seed", None) is not None:
        return
    applied = getattr(test, "_hypothesis_internal_use_settings", None)
    if getattr(applied, "derandomize", False):
        return  # settings(derandomize=True): the same examples every run, by design
    own = getattr(test, "_hypothesis_internal_use_seed", None)
    if own is not None and own != getattr(test, _APPLIED, None):
        return  # the test's own @seed(...)
    session = item.config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    seed = hypothesis_seed(session.seed, item.nodeid)
    # the attribute hypothesis.seed() sets, set alone: the decorator also turns the
    # example database off, and replaying saved failures first is worth keeping
    test._hypothesis_internal_use_seed = seed
    setattr(test, _APPLIED, seed)
