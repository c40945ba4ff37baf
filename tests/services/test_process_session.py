"""Process services as a pytest session meets them (pytester subprocess runs): the output
of a failing test's processes in its report, faults left unhealed by a test undone at its
teardown, and every process (children included) gone when the session ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ._proctools import READY, SCRIPT, alive, eventually, read_pid

HEADER = f"""
import socket, sys
import pytest

SCRIPT = {str(SCRIPT)!r}
READY = {READY!r}

def talk(port, timeout=10.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"ping\\n")
        return sock.makefile("rb").readline()

def argv(*extra):
    return [sys.executable, SCRIPT, "--port", "{{port}}", *extra]
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run an inner suite (HEADER + ``source``) in a pytest subprocess."""
    monkeypatch.delenv("PYTEST_CHAOS_SERVICES", raising=False)
    monkeypatch.delenv("PYTEST_CHAOS_REQUIRE_DOCKER", raising=False)

    def run(source: str, *args: str) -> pytest.RunResult:
        pytester.makepyfile(HEADER + source)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)

    return run


def test_a_failing_test_gets_the_output_of_the_processes_it_used(run) -> None:
    result = run(
        """
@pytest.fixture
def api(chaos_services):
    with chaos_services.process(argv("--say", "api says hello"), ready=READY, name="api") as s:
        yield s

@pytest.fixture(scope="session")
def other(chaos_services):
    return chaos_services.process(argv("--say", "other was here"), ready=READY, name="other")

def test_0_starts_other(other):
    assert talk(other.port) == b"echo:ping\\n"

def test_1_fails(api):
    assert talk(api.port) == b"nope"

def test_2_passes(api):
    assert talk(api.port) == b"echo:ping\\n"
""",
        "-rA",
    )
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    failures = text.split("= FAILURES =", 1)[1].split("= PASSES =", 1)[0]
    assert "- chaos process api output (pid " in failures
    assert "api says hello" in failures and "LISTENING on 127.0.0.1:" in failures
    # The session's other process was not used by the failing test: not attached.
    assert "other was here" not in failures
    # Passing tests (shown with -rA) get no output section.
    assert "chaos process" not in text.split("= PASSES =", 1)[1]


@pytest.mark.parametrize("fault", ["pause", "stop", "kill", "restart"])
def test_a_fault_the_test_did_not_heal_is_undone_at_its_teardown(run, fault: str) -> None:
    result = run(
        f"""
@pytest.fixture(scope="session")
def api(chaos_services):
    return chaos_services.process(argv(), ready=READY, name="api")

PORTS = []

@pytest.mark.chaos(blast_radius=["api"])
def test_1_faults_and_walks_away(chaos, api):
    PORTS.append(api.port)
    chaos.{fault}(api)

def test_2_finds_it_running(api):
    assert api.state == "running"
    assert api.port == PORTS[0]
    assert talk(api.port) == b"echo:ping\\n"
"""
    )
    result.assert_outcomes(passed=2)


def test_every_process_and_child_is_gone_when_the_session_ends(run, tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    parent_file = tmp_path / "parent.pid"
    result = run(
        f"""
@pytest.mark.chaos(blast_radius=["api"])
def test_fails_with_a_frozen_process(chaos_services):
    api = chaos_services.process(argv("--child", {str(child_file)!r}), ready=READY, name="api")
    open({str(parent_file)!r}, "w").write(str(api.pid))
    api.runtime.pause()  # frozen behind the controller's back: close must still end it
    assert False, "the test fails with its process frozen"
"""
    )
    result.assert_outcomes(failed=1)
    parent, child = read_pid(parent_file), read_pid(child_file)
    assert eventually(lambda: not alive(parent) and not alive(child))
