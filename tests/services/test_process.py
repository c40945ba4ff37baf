"""``chaos_services.process(...)``: the user's own services as real processes, live.

Every test runs real echo servers (``_procserver.py``); faults go through the real
``chaos`` controller. Timing asserts are generous: a paused server is shown by a
client timing out, never by how fast anything happens.
"""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.errors import InjectionError, ServiceError
from pytest_chaos.services import ChaosServices, Service
from pytest_chaos.services._local import free_port

from ._proctools import READY, alive, echo_argv, eventually, read_pid, refused, talk

Start = Callable[..., Service]


def test_ready_by_regex_captures_the_port(start_echo: Start) -> None:
    svc = start_echo("--say", "booting", name="echo-regex")
    assert (svc.kind, svc.provider, svc.host) == ("process", "process", "127.0.0.1")
    assert svc.url == f"tcp://127.0.0.1:{svc.port}"
    assert svc.address == f"127.0.0.1:{svc.port}"
    assert svc.state == "running"
    assert svc.pid is not None and alive(svc.pid)
    assert talk(svc.port) == b"echo:ping\n"
    output = svc.output()
    assert "booting" in output  # stderr too
    assert f"LISTENING on 127.0.0.1:{svc.port}" in output
    assert "--port 0" in output  # the placeholder's first value, in the start marker
    assert repr(svc).startswith("<Service 'echo-regex' process 127.0.0.1:")


def test_a_named_port_group_wins_over_the_first_group(start_echo: Start) -> None:
    svc = start_echo(ready=r"(LISTENING) on 127\.0\.0\.1:(?P<port>\d+)")
    assert talk(svc.port) == b"echo:ping\n"


def test_ready_by_port_probe(start_echo: Start) -> None:
    port = free_port()
    svc = start_echo(argv=echo_argv("--silent"), ready=port)
    assert svc.port == port
    assert "LISTENING" not in svc.output()
    assert talk(port) == b"echo:ping\n"


def test_the_default_name_is_the_executables_basename(
    chaos_services: ChaosServices, tmp_path: Path
) -> None:
    program = tmp_path / "my server"
    program.write_text(
        f"#!{sys.executable}\nimport runpy\n"
        f"runpy.run_path({str(_script())!r}, run_name='__main__')\n"
    )
    program.chmod(0o755)
    with chaos_services.process([str(program), "--port", "{port}"], ready=READY) as svc:
        assert svc.name == "my-server"
        assert talk(svc.port) == b"echo:ping\n"
    assert svc.state == "removed"


def _script() -> Path:
    return Path(__file__).with_name("_procserver.py")


def test_a_name_is_shared_by_the_same_command_and_refused_to_another(
    chaos_services: ChaosServices,
) -> None:
    with chaos_services.process(echo_argv(), ready=READY, name="echo-shared") as first:
        assert chaos_services.process(echo_argv(), ready=READY, name="echo-shared") is first
        with pytest.raises(ValueError, match=r"'echo-shared' is already used by another"):
            chaos_services.process(echo_argv("--say", "x"), ready=READY, name="echo-shared")
    # removed: the name is free again, for a new process
    with chaos_services.process(echo_argv(), ready=READY, name="echo-shared") as second:
        assert second is not first and second.state == "running"


def _bad(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"argv": echo_argv(), "ready": READY, **kwargs}


@pytest.mark.parametrize(
    ("kwargs", "error", "phrases"),
    [
        (_bad({"argv": []}), ValueError, ["argv [] is empty", "give the command"]),
        (_bad({"argv": ""}), ValueError, ["argv '' is empty"]),
        (_bad({"argv": ["python", 8080]}), TypeError, ["argv item 8080 is a int", "str(8080)"]),
        (_bad({"argv": 42}), TypeError, ["argv 42 is a int", "list of str"]),
        (
            _bad({"ready": r"LISTENING"}),
            ValueError,
            ["ready='LISTENING' has no group capturing the port", "pass port=N"],
        ),
        (_bad({"ready": 0}), ValueError, ["ready=0 is not a TCP port", "1 to 65535"]),
        (_bad({"ready": 70000}), ValueError, ["ready=70000 is not a TCP port"]),
        (_bad({"ready": True}), TypeError, ["ready=True is a bool"]),
        (_bad({"ready": 1.5}), TypeError, ["ready=1.5 is a float", "regex"]),
        (_bad({"ready": "(unclosed"}), ValueError, ["is not a valid regular expression"]),
        (_bad({"ready": READY, "port": 99999}), ValueError, ["port=99999 is not a TCP port"]),
        (_bad({"ready": 8080, "port": 8081}), ValueError, ["ready=8080 and port=8081 disagree"]),
        (
            _bad({"argv": ["no-such-program-pytest-chaos", "--flag"]}),
            ValueError,
            ["executable 'no-such-program-pytest-chaos' was not found on PATH", "full path"],
        ),
        (
            _bad({"argv": ["./missing.sh"]}),
            ValueError,
            ["executable './missing.sh' does not exist", "sys.executable"],
        ),
        (_bad({"cwd": "/no/such/dir"}), ValueError, ["cwd '/no/such/dir' is not a directory"]),
        (_bad({"env": {"PORT": 8080}}), TypeError, ["env['PORT'] = 8080", "str(value)"]),
        (_bad({"name": "-bad name"}), ValueError, ["service name '-bad name' is not valid"]),
    ],
)
def test_bad_arguments_say_what_is_wrong_and_the_fix(
    chaos_services: ChaosServices, kwargs: dict[str, Any], error: type, phrases: list[str]
) -> None:
    before = {s.name for s in chaos_services.services}
    with pytest.raises(error) as info:
        chaos_services.process(**kwargs)
    for phrase in phrases:
        assert phrase in str(info.value)
    assert {s.name for s in chaos_services.services} == before


def test_a_file_that_is_not_executable_is_refused(
    chaos_services: ChaosServices, tmp_path: Path
) -> None:
    script = tmp_path / "server.py"
    script.write_text("print('hi')\n")
    with pytest.raises(ValueError, match=r"is not executable; chmod \+x it"):
        chaos_services.process([str(script)], ready=READY)


def test_a_process_that_exits_before_ready_fails_with_its_output(
    chaos_services: ChaosServices,
) -> None:
    with pytest.raises(ServiceError) as info:
        chaos_services.process(echo_argv("--exit-before-ready", "3"), ready=READY, name="early")
    message = str(info.value)
    assert "process 'early' exited with code 3 before it was ready" in message
    assert "cannot open the frobnicator: no such device" in message  # the output's tail
    assert "LISTENING on 127" in message  # what it waited for
    assert "early" not in {s.name for s in chaos_services.services if s.state != "removed"}


def test_a_process_that_never_gets_ready_is_stopped_with_its_output(
    chaos_services: ChaosServices, tmp_path: Path
) -> None:
    child = tmp_path / "child.pid"
    with pytest.raises(ServiceError) as info:
        chaos_services.process(
            echo_argv("--silent", "--say", "warming up", "--child", str(child)),
            ready=READY,
            name="silent",
            timeout=1.0,
        )
    message = str(info.value)
    assert "process 'silent' is running (pid" in message
    assert "was not ready within 1 s" in message
    assert "warming up" in message
    assert eventually(lambda: not alive(read_pid(child)))


def test_children_are_reaped_when_the_service_is_removed(start_echo: Start, tmp_path: Path) -> None:
    child_file = tmp_path / "child.pid"
    svc = start_echo("--child", str(child_file))
    child, parent = read_pid(child_file), svc.pid
    assert parent is not None and alive(child)
    svc.runtime.pause()  # a fault left it frozen: removal still ends the whole tree
    svc.remove()
    assert svc.state == "removed" and svc.pid is None
    assert not alive(parent) and not alive(child)
    assert "LISTENING" in svc.output()  # kept after the directory is gone


def test_a_service_is_a_context_manager(chaos_services: ChaosServices) -> None:
    with chaos_services.process(echo_argv(), ready=READY, name="echo-ctx") as svc:
        pid = svc.pid
        assert pid is not None and talk(svc.port) == b"echo:ping\n"
    assert svc.state == "removed" and not alive(pid)


# -- faults ---------------------------------------------------------------------------


@pytest.mark.chaos(blast_radius=["echo"])
def test_pause_hangs_clients_until_healed(chaos, start_echo: Start) -> None:
    svc = start_echo(name="echo")
    with chaos.pause(svc):
        assert svc.state == "paused"
        # The kernel still accepts the connection; nobody answers it.
        with pytest.raises(socket.timeout):
            talk(svc.port, timeout=1.0)
    assert svc.state == "running"
    assert talk(svc.port) == b"echo:ping\n"


@pytest.mark.chaos(blast_radius=["echo"])
@pytest.mark.parametrize("fault", ["stop", "kill"])
def test_stop_and_kill_end_the_tree_and_heal_on_the_same_port(
    chaos, start_echo: Start, tmp_path: Path, fault: str
) -> None:
    child_file = tmp_path / "child.pid"
    svc = start_echo("--child", str(child_file), name="echo")
    port, pid, child = svc.port, svc.pid, read_pid(child_file)
    assert pid is not None
    with getattr(chaos, fault)(svc):
        assert svc.state == "stopped" and svc.pid is None
        assert refused(port)
        assert not alive(pid) and not alive(child)
    assert svc.port == port and svc.pid not in (None, pid)
    assert talk(port) == b"echo:ping\n"


@pytest.mark.chaos(blast_radius=["echo"])
def test_restart_comes_back_on_the_same_port(chaos, start_echo: Start) -> None:
    svc = start_echo(name="echo")
    port, pid = svc.port, svc.pid
    fault = chaos.restart(svc)
    assert svc.state == "running" and svc.pid not in (None, pid)
    assert talk(port) == b"echo:ping\n"
    assert svc.output().count("[pytest-chaos] start") == 2
    assert f"--port {port}" in svc.output()  # the placeholder got the captured port
    fault.heal()
    assert talk(port) == b"echo:ping\n"
    events = [(e.kind, e.name) for e in chaos.timeline.events if e.target == "echo"]
    assert events == [("inject", "restart"), ("heal", "restart")]


@pytest.mark.chaos(blast_radius=["echo"])
def test_a_restart_that_lands_on_another_port_fails_with_the_fix(chaos, start_echo: Start) -> None:
    svc = start_echo(argv=echo_argv(port="0"), name="echo")  # no placeholder
    with pytest.raises(InjectionError) as info:
        chaos.restart(svc)
    message = str(info.value)
    assert re.search(rf"came back on port \d+ after a restart, not on its port {svc.port}", message)
    assert "{port}" in message
    assert svc.state == "stopped"  # not left running where no client looks


@pytest.mark.chaos(blast_radius=["echo-a", "echo-b"])
def test_kill_random_kills_one_of_two_process_services(chaos, start_echo: Start) -> None:
    services = [start_echo(name="echo-a"), start_echo(name="echo-b")]
    faults = chaos.kill_random(services)
    assert len(faults) == 1
    states = sorted(s.state for s in services)
    assert states == ["running", "stopped"]
    chaos.heal_all()
    for svc in services:
        assert svc.state == "running" and talk(svc.port) == b"echo:ping\n"


def test_a_fault_outside_the_blast_radius_is_refused(chaos, start_echo: Start) -> None:
    svc = start_echo(name="echo-outside")
    with pytest.raises(Exception, match="echo-outside"):
        chaos.kill(svc)
    assert svc.state == "running"
