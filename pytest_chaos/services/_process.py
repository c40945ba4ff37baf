"""The user's own services as processes: ``chaos_services.process(argv, ready=...)``.

A `ProcessRuntime` is a `LocalProcess` (the runtime of the local Redis and PostgreSQL
binaries) whose readiness comes from the user: a regular expression matched against
what the process prints, or a TCP port that must accept connections. So every service
fault works on it exactly as on a local binary: ``chaos.pause`` SIGSTOPs the process
and every process it forked, ``stop``/``kill`` end the whole tree, healing starts the
same command again, and ``chaos.restart`` does both at once.

Ports. The recommended pattern binds port 0 (the kernel picks a free port, so xdist
workers never race for one) and prints it::

    chaos_services.process(
        [sys.executable, "-m", "myapi", "--port", "{port}"],
        ready=r"listening on 127\\.0\\.0\\.1:(?P<port>\\d+)",
    )

The first group of the pattern (or the group named ``port``) captures the port. A
``{port}`` placeholder in ``argv`` or in ``env`` values is replaced by ``0`` at the first
start and by the captured port at every later start (after ``stop``, ``kill`` or
``restart``), so the service comes back on the address clients hold. Without a
placeholder the process must find its way back to that port by itself; a start that
lands elsewhere is stopped and reported with the fix.

Output. stdout and stderr go to ``output.log`` in the process's own temporary
directory (its working directory unless ``cwd`` is given); `ProcessRuntime.output`
reads it back, and the services sub-plugin attaches its tail to the report of a failing
test that used the service. ``PYTHONUNBUFFERED=1`` is set unless ``env`` says otherwise:
a Python program writing to a file buffers its ready line out of sight.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._local import (
    WORKDIR_ENV,
    LocalProcess,
    _workdir,
    remove_dead_local_leftovers,
)
from pytest_chaos.services._probe import tcp_ready, wait_until

__all__ = [
    "PORT_PLACEHOLDER",
    "ProcessRuntime",
    "ProcessSpec",
    "default_name",
    "describe_spec",
    "start_process",
    "sweep_dead_processes",
]

#: replaced in argv and env values by the service's port (``0`` before it is known)
PORT_PLACEHOLDER = "{port}"
#: lines of output attached to the report of a failing test
OUTPUT_TAIL_LINES = 60
_HOST = "127.0.0.1"
_KIND = "process"  # the work directories are tempdir/pytest-chaos-process-<random>
_KEEP_CHARS = 256_000  # output kept in memory once the directory is deleted
_swept = False


def _port_text(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        return None
    return value


def _port_group(pattern: re.Pattern[str]) -> str | int | None:
    if "port" in pattern.groupindex:
        return "port"
    return 1 if pattern.groups >= 1 else None


@dataclass(frozen=True)
class ProcessSpec:
    """What to run and how to know it is ready; validated by `ProcessSpec.build`."""

    argv: tuple[str, ...]
    pattern: re.Pattern[str] | None
    #: the port known before the start (``ready=PORT`` or ``port=``), else captured
    port: int | None
    env: tuple[tuple[str, str], ...]
    cwd: Path | None

    @property
    def captures_port(self) -> bool:
        """Whether the ready pattern has a group that captures the port."""
        return self.pattern is not None and _port_group(self.pattern) is not None

    @property
    def has_placeholder(self) -> bool:
        """Whether ``{port}`` appears in argv or an env value."""
        values = [*self.argv, *(value for _, value in self.env)]
        return any(PORT_PLACEHOLDER in value for value in values)

    def describe_ready(self, port: int | None = None) -> str:
        """What readiness means for this process, for messages."""
        port = port or self.port
        parts = []
        if self.pattern is not None:
            parts.append(f"a line matching {self.pattern.pattern!r} in its output")
        if port is not None:
            parts.append(f"a TCP connection accepted on {_HOST}:{port}")
        elif self.captures_port:
            parts.append("a TCP connection accepted on the port the line names")
        return " and ".join(parts)

    @classmethod
    def build(
        cls,
        argv: str | Sequence[str | os.PathLike[str]],
        ready: str | re.Pattern[str] | int,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        port: int | None = None,
    ) -> ProcessSpec:
        """Check the arguments of ``chaos_services.process``; every error says the fix."""
        if isinstance(argv, str):
            words = shlex.split(argv)
        elif isinstance(argv, Sequence):
            words = []
            for item in argv:
                if not isinstance(item, str | os.PathLike):
                    raise TypeError(
                        f"argv item {item!r} is a {type(item).__name__}; every item of argv "
                        "must be a str (or a path): convert it, e.g. str(8080)."
                    )
                words.append(os.fspath(item))
        else:
            raise TypeError(
                f"argv {argv!r} is a {type(argv).__name__}; give the command as a list of "
                "str, e.g. [sys.executable, 'server.py'], or as one shell-quoted str."
            )
        if not words or not words[0]:
            raise ValueError(
                f"argv {argv!r} is empty; give the command to run, e.g. "
                "[sys.executable, 'server.py', '--port', '{port}']."
            )

        workdir: Path | None = None
        if cwd is not None:
            workdir = Path(cwd)
            if not workdir.is_dir():
                raise ValueError(
                    f"cwd {os.fspath(cwd)!r} is not a directory; give an existing directory "
                    "or leave cwd out (the process then runs in its own temporary directory)."
                )

        pairs: list[tuple[str, str]] = []
        for key, value in (env or {}).items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"env[{key!r}] = {value!r}: environment names and values must be str; "
                    "convert the value, e.g. str(value)."
                )
            pairs.append((key, value))

        if port is not None and _port_text(port) is None:
            raise ValueError(
                f"port={port!r} is not a TCP port (an int from 1 to 65535); give the port "
                "the process listens on, or leave port out and capture it with the ready "
                "pattern."
            )
        pattern: re.Pattern[str] | None = None
        if isinstance(ready, int) and not isinstance(ready, bool):
            if _port_text(ready) is None:
                raise ValueError(
                    f"ready={ready!r} is not a TCP port (an int from 1 to 65535); give the "
                    "port the process listens on, or a regex matching the line it prints "
                    "when ready (with a group capturing the port)."
                )
            if port is not None and port != ready:
                raise ValueError(
                    f"ready={ready} and port={port} disagree; ready=PORT already says "
                    "which port to probe: drop port=."
                )
            port = ready
        elif isinstance(ready, str | re.Pattern):
            if isinstance(ready, str):
                try:
                    pattern = re.compile(ready, re.MULTILINE)
                except re.error as exc:
                    raise ValueError(
                        f"ready={ready!r} is not a valid regular expression ({exc}); fix it, "
                        "e.g. ready=r'listening on 127\\.0\\.0\\.1:(\\d+)'."
                    ) from None
            else:
                pattern = ready
            if not isinstance(pattern.pattern, str):
                raise TypeError(
                    f"ready={pattern.pattern!r} is a bytes pattern; output is matched as "
                    "text: give a str pattern."
                )
            if _port_group(pattern) is None and port is None:
                raise ValueError(
                    f"ready={pattern.pattern!r} has no group capturing the port and no "
                    "port= was given, so pytest-chaos cannot know where the service "
                    "listens. Capture it, e.g. ready=r'listening on 127\\.0\\.0\\.1:(\\d+)' "
                    "(the first group or a group named 'port'), or pass port=N."
                )
        else:
            raise TypeError(
                f"ready={ready!r} is a {type(ready).__name__}; give a regex (str or "
                "re.Pattern) matching the line the process prints when ready, or the int "
                "TCP port it listens on."
            )

        spec = cls(argv=tuple(words), pattern=pattern, port=port, env=tuple(pairs), cwd=workdir)
        _check_executable(spec)
        return spec


def _check_executable(spec: ProcessSpec) -> None:
    program = spec.argv[0]
    if os.sep in program:
        path = Path(program)
        if not path.is_absolute():
            # Popen resolves a relative program against cwd, so check it there too.
            path = (spec.cwd or Path.cwd()) / path
        if not path.is_file():
            raise ValueError(
                f"executable {program!r} does not exist (looked at {path}); give the path "
                "of the program to run, or run a script through its interpreter: "
                "[sys.executable, 'server.py']."
            )
        if not os.access(path, os.X_OK):
            raise ValueError(
                f"executable {program!r} ({path}) is not executable; chmod +x it, or run "
                f"it through its interpreter: [sys.executable, {program!r}]."
            )
        return
    search = dict(spec.env).get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(program, path=search) is None:
        raise ValueError(
            f"executable {program!r} was not found on PATH; install it, give its full "
            "path, or run a script through its interpreter: [sys.executable, 'server.py']."
        )


def default_name(spec: ProcessSpec) -> str:
    """The service name when none is given: the executable's basename, made valid."""
    base = os.path.basename(spec.argv[0])
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", base).lstrip("-_.")
    return cleaned or "process"


class ProcessRuntime(LocalProcess):
    """The runtime of a ``process()`` service: a `LocalProcess` ready by output or port.

    ``port`` is the port the service listens on once known (given, or captured from the
    ready line at the first start); later starts must come back on it.
    """

    def __init__(self, spec: ProcessSpec, *, label: str) -> None:
        workdir = _workdir(_KIND)
        super().__init__(
            label=f"process {label!r}",
            argv=list(spec.argv),
            workdir=workdir,
            ready=self._ready_now,
            log=workdir / "output.log",
            cwd=spec.cwd,
        )
        self.provider = "process"
        self.spec = spec
        self.port: int | None = spec.port
        self.starts = 0
        self._captured: int | None = None
        self._final_output: str | None = None

    def start(self) -> None:
        """Start the command (again), ``{port}`` replaced by the known port or ``0``."""
        if self._removed or self.running:
            super().start()  # raises when removed, returns when running
            return
        port_text = str(self.port if self.port is not None else 0)
        self._argv = [word.replace(PORT_PLACEHOLDER, port_text) for word in self.spec.argv]
        env = {"PYTHONUNBUFFERED": "1", **os.environ}
        env.update(
            (key, value.replace(PORT_PLACEHOLDER, port_text)) for key, value in self.spec.env
        )
        # The sweep's witness when the process runs in a directory of the user's.
        env[WORKDIR_ENV] = str(self._workdir)
        self._env = env
        self._captured = None
        self.starts += 1
        # A marker between runs, written before the run's output starts (the ready
        # pattern only sees the run's own output).
        with contextlib.suppress(OSError), open(self._log, "a", encoding="utf-8") as log:
            log.write(f"[pytest-chaos] start {self.starts}: {shlex.join(self._argv)}\n")
        try:
            super().start()
        except OSError as exc:  # exec failed: a script without a shebang, no permission
            raise ServiceError(
                f"cannot start {self._label} ({shlex.join(self._argv)}): {exc}. Check the "
                "program, or run a script through its interpreter: [sys.executable, ...]."
            ) from exc

    def _ready_now(self) -> bool:
        port = self.port
        pattern = self.spec.pattern
        if pattern is not None:
            match = pattern.search(self.output(current_run=True))
            if match is None:
                return False
            group = _port_group(pattern)
            if group is not None:
                port = self._captured = self._parse_port(match, group)
        return port is not None and tcp_ready(_HOST, port)

    def _parse_port(self, match: re.Match[str], group: str | int) -> int:
        text = match.group(group)
        port = int(text) if text is not None and text.isdigit() else None
        if _port_text(port) is None:
            raise ServiceError(
                f"{self._label} printed {match.group(0)!r}: the ready pattern's port group "
                f"{group!r} captured {text!r}, not a TCP port. Make the group match the "
                "port's digits only, e.g. r'listening on 127\\.0\\.0\\.1:(\\d+)'."
            )
        assert port is not None
        return port

    def wait_ready(self, timeout: float) -> None:
        """Block until the process printed its ready line and accepts connections.

        Raises `ServiceError` with the output's tail when it exits first or does not get
        ready in time, and stops it when it came back on another port than before.
        """
        if not wait_until(
            lambda: self._alive() and self._ready_now(), timeout=timeout, alive=self._alive
        ):
            self._not_ready(timeout)
        if self._captured is None:
            return
        if self.port is None:
            self.port = self._captured
        elif self._captured != self.port:
            came_back_on = self._captured
            # Clients hold the old address: a service elsewhere is worse than none.
            self.stop()
            raise ServiceError(
                f"{self._label} came back on port {came_back_on} after a restart, not on "
                f"its port {self.port}, so clients would not find it; it was stopped. Put "
                f"the placeholder {PORT_PLACEHOLDER} in argv or env where the process takes "
                "its port (it gets 0 at the first start, the captured port afterwards), or "
                "make the process reuse its port by itself."
            )

    def _not_ready(self, timeout: float) -> None:
        tail = self.output_tail(current_run=True)
        command = shlex.join(self._argv)
        expected = self.spec.describe_ready(self.port)
        if not self.running:
            code = self._proc.returncode if self._proc is not None else None
            raise ServiceError(
                f"{self._label} exited with code {code} before it was ready (waiting for "
                f"{expected}). Command: {command}. Its output ends with:\n{tail}\n"
                "Fix the command or the program (run the command by hand to see it fail)."
            )
        raise ServiceError(
            f"{self._label} is running (pid {self.pid}) but was not ready within "
            f"{timeout:.0f} s (waiting for {expected}). Command: {command}. Its output ends "
            f"with:\n{tail}\nMake it print a line the ready pattern matches (flushed) and "
            "listen on 127.0.0.1, or fix the pattern."
        )

    def output(self, *, current_run: bool = False) -> str:
        """Everything the process printed (``current_run``: since its last start), with a
        ``[pytest-chaos] start N`` line before each run; kept after `remove`."""
        if self._final_output is not None:
            return "" if current_run else self._final_output
        return super().output(current_run=current_run)

    def output_tail(self, lines: int = OUTPUT_TAIL_LINES, *, current_run: bool = False) -> str:
        """The last ``lines`` lines of `output`, or ``(no output)``."""
        text = "\n".join(self.output(current_run=current_run).splitlines()[-lines:])
        return text or "(no output)"

    def remove(self) -> None:
        """Stop the process tree, keep its output in memory, delete its directory."""
        if self._removed:
            return
        with contextlib.suppress(Exception):
            self.unpause()
        if self.running:
            self.stop()
        self._final_output = super().output()[-_KEEP_CHARS:]
        super().remove()

    def __repr__(self) -> str:
        return f"<ProcessRuntime {self._label} {self.describe()} {self.state()}>"


def sweep_dead_processes() -> list[str]:
    """Once per pytest process: kill processes (and delete directories) of dead runs."""
    global _swept
    if _swept:
        return []
    _swept = True
    return remove_dead_local_leftovers(f"pytest-chaos-{_KIND}-*")


def start_process(spec: ProcessSpec, *, label: str, timeout: float) -> tuple[ProcessRuntime, int]:
    """Start ``spec`` and wait until it is ready; the runtime and the service's port.

    On any failure the process tree is stopped and its directory deleted.
    """
    runtime = ProcessRuntime(spec, label=label)
    try:
        runtime.start()
        runtime.wait_ready(timeout)
    except BaseException:
        runtime.remove()
        raise
    if runtime.port is None:  # pragma: no cover - build() demands a known or captured port
        runtime.remove()
        raise ServiceError(f"{label}: no port known after the start")
    return runtime, runtime.port


def describe_spec(spec: ProcessSpec) -> dict[str, Any]:
    """The spec as plain data, for messages comparing two requests of one name."""
    return {
        "argv": list(spec.argv),
        "ready": spec.pattern.pattern if spec.pattern is not None else spec.port,
        "env": dict(spec.env),
        "cwd": str(spec.cwd) if spec.cwd else None,
    }
