"""chaos.compare against two real echo services, each behind its own fault proxy.

The control and the experiment are two instances of the same TCP echo service; only the
experiment's proxy is in the blast radius, so only it can be faulted.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator

import pytest

from pytest_chaos import Chaos
from pytest_chaos.checks import ComparisonAborted, ComparisonViolated

pytestmark = pytest.mark.chaos(blast_radius=["experiment"])


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_pair() -> Iterator[tuple[str, str]]:
    """Two echo services (control, experiment): their ``host:port``."""
    servers = []
    for _ in range(2):
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
    try:
        yield tuple(f"127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def ping(address: str) -> None:
    """One echo round trip through ``address`` (a proxy), on a fresh connection."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2.0) as sock:
        sock.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = sock.recv(64)
            if not chunk:
                raise ConnectionError(f"closed after {got!r}")
            got += chunk


@pytest.fixture
def pair(chaos: Chaos, echo_pair: tuple[str, str]) -> tuple[str, str, Callable[..., object]]:
    control = chaos.proxy("control", upstream=echo_pair[0])
    experiment = chaos.proxy("experiment", upstream=echo_pair[1])
    return control.address, experiment.address, experiment.latency


def test_no_false_alarm_on_identical_services_in_20_seeded_runs(chaos: Chaos, pair) -> None:
    """Two identical services, no fault: 20 comparisons with different seeds, none fails.

    The budget is what a user of a sub-millisecond service would accept (+1 ms at the
    median, +10 ms at p99): on loopback, scheduler noise alone moves a group's p99 by
    more than 20%, and on a busy machine about 1-3% of comparisons of identical services
    reach p < 0.01 (measured over 300-400 comparisons), which a relative budget of a few
    percent would turn into false alarms.
    """
    control, experiment, _ = pair
    p_values = []
    for seed in range(20):
        comparison = chaos.compare(
            ping,
            control=control,
            experiment=experiment,
            samples=25,
            seed=seed,
            max_degradation={"p50": "+1ms", "p99": "+10ms", "error_rate": "+1pt"},
        )
        p_values.append(comparison.latency.p_value)
    assert len(chaos.timeline.of_kind("check")) == 20
    # the statistics see no difference: p-values spread as under the null hypothesis,
    # seldom below alpha (a test that called identical services different would fail)
    assert max(p_values) > 0.1, p_values
    assert sum(p < 0.01 for p in p_values) <= 3, p_values


def test_a_slow_dependency_is_detected(chaos: Chaos, pair) -> None:
    control, experiment, latency = pair
    with pytest.raises(ComparisonViolated) as info:
        chaos.compare(
            ping,
            control=control,
            experiment=experiment,
            samples=15,
            inject=lambda: latency(25),
            max_degradation={"p50": "+20%", "p99": "+20%"},
        )
    measured = info.value.measured
    # p50 always; p99 of 15 calls is their maximum, which one stall of a loaded machine
    # can set in the control group too (the bare CI leg saw it once)
    assert "p50" in measured["degraded"] and set(measured["degraded"]) <= {"p50", "p99"}
    assert measured["latency_p_value"] < 1e-6 and measured["cliffs_delta"] > 0.9
    assert measured["experiment_p50"] >= 0.025 > measured["control_p50"]
    assert "compare violated" in str(info.value) and "p50 " in str(info.value)
    assert not chaos.active_faults  # inject's fault was healed when compare ended
    (fault,) = chaos.faults
    assert fault.healed_by == "test"


def test_max_degradation_passes_within_budget_and_fails_beyond(chaos: Chaos, pair) -> None:
    control, experiment, latency = pair
    with latency(10):
        within = chaos.compare(
            ping,
            control=control,
            experiment=experiment,
            samples=10,
            max_degradation={"p50": "+200ms", "error_rate": "+1pt"},
        )
        assert within.passed and within.latency.p_value < 0.01  # significant, but in budget
        with pytest.raises(ComparisonViolated, match=r"budget \+2ms"):
            chaos.compare(
                ping,
                control=control,
                experiment=experiment,
                samples=10,
                max_degradation={"p50": "+2ms"},
            )


def test_abort_when_heals_the_experiment_at_once(chaos: Chaos, pair) -> None:
    control, experiment, latency = pair
    with pytest.raises(ComparisonAborted, match="compare aborted by abort_when") as info:
        chaos.compare(
            ping,
            control=control,
            experiment=experiment,
            samples=200,
            inject=lambda: latency(300),
            abort_when={"p99": 0.15, "window": 3},
            max_degradation={"p99": "+10s"},
        )
    assert "experiment p99 3" in str(info.value) and "> 150.0 ms" in str(info.value)
    assert info.value.measured["calls_experiment"] == 3  # stopped, not 200
    (fault,) = chaos.faults
    assert fault.healed_by == "guard" and not chaos.active_faults
    assert chaos.aborted is not None
    (abort,) = chaos.timeline.of_kind("abort")
    assert abort.name == "compare" and abort.data["healed"] == [fault.id]
    (heal,) = chaos.timeline.of_kind("heal")
    (check,) = chaos.timeline.of_kind("check")
    assert heal.t <= abort.t <= check.t  # healed before the comparison ended
    assert check.data["measured"]["aborted"] is True


def test_compare_outside_the_blast_radius_is_refused(chaos: Chaos, pair) -> None:
    from pytest_chaos import BlastRadiusError

    control, experiment, _ = pair
    with pytest.raises(BlastRadiusError):
        chaos.compare(
            ping,
            control=control,
            experiment=experiment,
            samples=5,
            inject=lambda: chaos.proxies["control"].latency(10),
        )
