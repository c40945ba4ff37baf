"""Fixtures of pytest-chaos: ``toxiproxy`` and ``chaos``, and the per-test record.

Heavy modules (the controller, the proxy server) are imported inside the fixtures, so
loading this sub-plugin costs nothing for runs without chaos tests.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.plugin._marker import spec_for
from pytest_chaos.plugin._session import ToxiproxyServer, get_session

if TYPE_CHECKING:
    from pytest_chaos.experiment import Chaos

__all__ = ["RECORD_SCHEMA", "chaos", "toxiproxy"]

RECORD_SCHEMA = "pytest-chaos/record/1"
CHAOS_KEY = pytest.StashKey["Chaos"]()


@pytest.fixture(scope="session")
def toxiproxy(request: pytest.FixtureRequest) -> ToxiproxyServer:
    """The Toxiproxy-compatible server this worker uses: ``.url``, ``.client``, ``.backend``.

    The embedded server starts the first time a test asks for it, once per process
    (one per xdist worker), and stops at the end of the session.
    """
    return get_session(request.config).server()


@pytest.fixture
def chaos(request: pytest.FixtureRequest, toxiproxy: ToxiproxyServer) -> Iterator[Chaos]:
    """The chaos experiment of this test (a :class:`pytest_chaos.Chaos`).

    Faults need ``@pytest.mark.chaos(blast_radius=[...])``. At teardown every fault is
    healed, every proxy removed, and the server checked for leftovers.
    """
    # _reaper not at module level: a sub-plugin imported first is not assertion-rewritten
    from pytest_chaos.experiment import Chaos
    from pytest_chaos.plugin._reaper import observer_for

    session = get_session(request.config)
    controller = Chaos(
        client=toxiproxy.client,
        spec=spec_for(request.node),
        nodeid=request.node.nodeid,
        seed=session.seed,
        run_id=session.run_id,
        worker=session.worker,
        hook=request.config.hook,
        backend=toxiproxy.backend,
        listen_host=toxiproxy.listen_host,
        public_host=toxiproxy.public_host,
        observer=observer_for(request.config, toxiproxy),
    )
    controller.time_scale = session.settings.time_scale
    request.node.stash[CHAOS_KEY] = controller
    session.session_rollback.add(controller.undo_stack, lambda: controller.heal_all(by="session"))
    try:
        yield controller
    finally:
        try:
            controller.teardown()
        finally:
            session.session_rollback.discard(controller.undo_stack)


def _is_chaos_test(item: pytest.Item) -> bool:
    return CHAOS_KEY in item.stash or item.get_closest_marker("chaos") is not None


def build_record(item: pytest.Item) -> dict[str, Any]:
    """The JSON-safe per-test record (docs/internals.md) of a chaos test."""
    session = get_session(item.config)
    spec = spec_for(item)
    controller = item.stash.get(CHAOS_KEY, None)
    server = session._server
    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "nodeid": item.nodeid,
        "worker": session.worker,
        "run_id": session.run_id,
        "blast_radius": spec.blast_radius.to_json() if spec else None,
        "backend": {
            "kind": session.settings.backend,
            "url": server.url if server else "",
            "version": server.version if server else "",
        },
        "seed": session.seed,
        "timeline": {"started": time.time(), "events": [], "samples": []},
        "aborted": None,
        "leftovers": [],
        "started": time.time(),
        "duration": 0.0,
    }
    if controller is not None:
        started = controller.timeline.started_wall
        record["timeline"] = controller.timeline.to_json()
        record["aborted"] = dict(controller.aborted) if controller.aborted else None
        record["leftovers"] = list(controller.leftovers)
        record["started"] = started
        record["duration"] = round(time.time() - started, 6)
    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the seed to failures and the ``chaos_record`` to the teardown report."""
    report = yield
    if not _is_chaos_test(item):
        return report
    session = get_session(item.config)
    # an experiment that could not run (--chaos-strict) is not replayed by a seed
    if report.failed and not hasattr(report, "chaos_unavailable"):
        report.sections.append(
            (
                "chaos",
                f"seed={session.seed}; replay with: pytest --chaos-seed={session.seed} "
                f"'{item.nodeid}'",
            )
        )
    if report.when == "teardown":
        controller = item.stash.get(CHAOS_KEY, None)
        if controller is not None and controller.notes:
            report.sections.append(("chaos rollback (teardown)", "\n".join(controller.notes)))
        report.chaos_record = build_record(item)  # type: ignore[attr-defined]
    return report
