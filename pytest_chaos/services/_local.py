"""The local-binary provider: Redis and PostgreSQL as processes on this machine.

Used when no Docker engine answers. Each server runs in its own temporary directory on
a free loopback port, in its own session; pause and kill reach the server and every
process it forked (PostgreSQL forks one backend per connection), found by parent pid,
like they reach every process of a container.

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root. When the test process
is root they run as the ``postgres`` user (created by Debian's package) or, failing
that, ``nobody``, through ``setpriv`` (which execs, so the pid we hold is the server's).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._bundled import reachable_bin, server_version
from pytest_chaos.services._owner import owner_is_dead, owner_token
from pytest_chaos.services._probe import postgres_ready, redis_ready, wait_until
from pytest_chaos.services._service import ServiceState

__all__ = [
    "LocalProcess",
    "find_postgres_bin",
    "find_redis_server",
    "free_port",
    "remove_dead_local_leftovers",
]

POSTGRES_USER = "postgres"
POSTGRES_PASSWORD = "postgres"
POSTGRES_DB = "postgres"

#: every server directory is tempdir/pytest-chaos-<kind>-<random>, holding these files
_DIR_GLOB = "pytest-chaos-[rp][eo]*-*"
_OWNER_FILE = "owner"
_PID_FILE = "server.pid"
#: set in the environment of processes started with their own working directory: the
#: sweep's witness that a pid still belongs to a server directory (children inherit it)
WORKDIR_ENV = "PYTEST_CHAOS_WORKDIR"


def _workdir(kind: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix=f"pytest-chaos-{kind}-"))
    (workdir / _OWNER_FILE).write_text(owner_token())
    return workdir


def _marked(pid: int, workdir: Path) -> bool:
    """Whether ``pid`` carries ``WORKDIR_ENV=workdir`` in its environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return f"{WORKDIR_ENV}={workdir}".encode() in fh.read().split(b"\0")
    except OSError:
        return False


def remove_dead_local_leftovers(pattern: str = _DIR_GLOB) -> list[str]:
    """Kill servers and delete directories that dead pytest processes left behind.

    A pytest killed with SIGKILL never runs its teardown; its servers keep running in
    their own sessions. The directory names the owner; the pid file names the server,
    trusted only if that process still works in the directory (or, for a process given
    its own working directory, carries the directory in its environment). ``pattern``
    globs the directories under the temporary directory.
    """
    removed: list[str] = []
    for workdir in Path(tempfile.gettempdir()).glob(pattern):
        try:
            owner = (workdir / _OWNER_FILE).read_text().strip()
        except OSError:
            continue
        if not owner_is_dead(owner):
            continue
        with contextlib.suppress(OSError, ValueError):
            pid = int((workdir / _PID_FILE).read_text().strip())
            # A recycled pid would not be working in this directory (servers rewrite
            # their command lines, so the working directory is the safer witness).
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            if cwd == workdir or workdir in cwd.parents or _marked(pid, workdir):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                removed.append(f"process {pid}")
        shutil.rmtree(workdir, ignore_errors=True)
        removed.append(f"directory {workdir}")
    return removed


def free_port() -> int:
    """A loopback port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str | None:
    """Path of ``redis-server`` on PATH, or ``None``."""
    return shutil.which("redis-server")


def find_postgres_bin() -> Path | None:
    """Directory holding ``initdb`` and ``postgres``: PATH first, then Debian's layout."""
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie holds no port or memory)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _unprivileged_user() -> pwd.struct_passwd | None:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


class LocalProcess:
    """A server process (and its process group) that can be frozen, killed and restarted.

    ``argv`` is run again by `start` after a stop or kill, on the same port and data,
    in ``cwd`` (default: ``workdir``) with ``env`` (default: this process's environment).
    ``provider`` names where the binary came from (``local``, ``bundled``, ...).
    Everything it prints goes to ``log``; `output` reads it back.
    """

    def __init__(
        self,
        *,
        label: str,
        argv: list[str],
        workdir: Path,
        ready: Callable[[], bool],
        log: Path,
        stop_signal: signal.Signals = signal.SIGTERM,
        provider: str = "local",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.provider = provider
        self._env = env
        self._cwd = cwd
        self._label = label
        self._stop_signal = stop_signal
        self._argv = argv
        self._workdir = workdir
        self._ready = ready
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._removed = False
        #: where the current run's output starts in the log (a restart appends)
        self._run_offset = 0

    # -- life cycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start (or restart) the server process in a new process group."""
        if self._removed:
            raise ServiceError(f"{self._label} was removed and cannot be started again.")
        if self._proc is not None and self._proc.poll() is None:
            return
        with open(self._log, "ab") as log:
            self._run_offset = log.tell()
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._cwd or self._workdir,
                env=self._env,
                start_new_session=True,
            )
        # For the next run's sweep, should this process die without its teardown.
        with contextlib.suppress(OSError):
            (self._workdir / _PID_FILE).write_text(str(self._proc.pid))
        self._paused = False

    def wait_ready(self, timeout: float) -> None:
        """Block until the server answers its protocol's probe."""
        # Alive first: another server that took our port must not pass for ours.
        if wait_until(lambda: self._alive() and self._ready(), timeout=timeout, alive=self._alive):
            return
        raise ServiceError(
            f"{self._label} did not answer within {timeout:.0f} s "
            f"({'still running' if self._alive() else 'process exited'}); "
            f"last log lines:\n{self._tail()}"
        )

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def running(self) -> bool:
        """Whether the server process exists (running or paused)."""
        return self._alive()

    @property
    def pid(self) -> int | None:
        """The server process's pid, ``None`` when it is not running."""
        return self._proc.pid if self._alive() and self._proc is not None else None

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to (every run appended)."""
        return self._log

    def output(self, *, current_run: bool = False) -> str:
        """Everything the server printed (``current_run``: since its last start)."""
        try:
            with open(self._log, "rb") as fh:
                fh.seek(self._run_offset if current_run else 0)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        return self._tail(lines)

    def _tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def state(self) -> ServiceState:
        """running, paused, stopped or removed."""
        if self._removed:
            return "removed"
        if not self._alive():
            return "stopped"
        return "paused" if self._paused else "running"

    def _tree(self) -> list[int]:
        """The server and every process it forked, the server first.

        Found through parent pids, not the process group: PostgreSQL backends call
        setsid(), so signalling the group would miss them.
        """
        if not self._alive() or self._proc is None:
            return []
        root = self._proc.pid
        children: dict[int, list[int]] = {}
        try:
            entries = os.listdir("/proc")
        except OSError:  # no procfs: the process group is the best we can do
            return [root]
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        tree = [root]
        for pid in tree:  # grows while iterated: breadth-first over descendants
            tree.extend(children.get(pid, []))
        return tree

    def _signal(self, sig: signal.Signals, pids: list[int]) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if self._proc is not None:
            # Anything still in the group that the parent-pid walk did not see.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)

    def pause(self) -> None:
        """SIGSTOP the server and every process it forked."""
        if not self._alive():
            raise ServiceError(f"cannot pause {self._label}: it is not running.")
        self._signal(signal.SIGSTOP, self._tree())
        self._paused = True

    def unpause(self) -> None:
        """SIGCONT the server and every process it forked."""
        self._signal(signal.SIGCONT, self._tree())
        self._paused = False

    def stop(self) -> None:
        """The server's graceful stop signal (continued first if paused), SIGKILL after 10 s."""
        if self._proc is None:
            return
        tree = self._tree()
        if self._paused:
            self.unpause()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self._proc.pid, self._stop_signal)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL, self._tree())
            self._proc.wait()
        self._paused = False
        self._reap(tree)

    def kill(self) -> None:
        """SIGKILL the server and every process it forked, as ``docker kill`` does."""
        if self._proc is None:
            return
        tree = self._tree()
        self._signal(signal.SIGKILL, tree)
        self._proc.wait()
        self._paused = False
        self._reap(tree)

    def _reap(self, pids: list[int]) -> None:
        # Orphaned children (PostgreSQL backends) may outlive the server for a moment
        # and hold the port or shared memory: a restart must not race them.
        deadline = time.monotonic() + 10
        for pid in pids:
            while _running(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.01)

    def disconnect(self, network: str | None) -> str:
        """Not possible for a local process: there is no network to leave."""
        raise ServiceError(
            f"cannot disconnect {self._label} from a network: it runs as a local process "
            "(local-binary provider). Use the Docker provider (--chaos-services=docker) for "
            "network partitions, or put the service behind chaos.proxy(...) and use down()."
        )

    def reconnect(self, network: str) -> None:
        """Never reached: `disconnect` always raises."""

    def remove(self) -> None:
        """Kill the server and delete its directory. Idempotent."""
        if self._removed:
            return
        with contextlib.suppress(Exception):
            self.unpause()
        if self._alive():
            self.stop()
        self._removed = True
        shutil.rmtree(self._workdir, ignore_errors=True)

    def describe(self) -> str:
        """``pid N`` or ``not running``."""
        if self._alive() and self._proc is not None:
            return f"pid {self._proc.pid}"
        return "not running"

    def __repr__(self) -> str:
        return f"<LocalProcess {self._label} {self.describe()} {self.state()}>"


def _launch(make: Callable[[int], LocalProcess], timeout: float) -> tuple[LocalProcess, int]:
    """Start a server on a free port; on a port lost to another process, try another."""
    for attempt in range(3):
        port = free_port()
        process = make(port)
        process.start()
        try:
            process.wait_ready(timeout)
            return process, port
        except ServiceError:
            # The kernel gave the port to someone else between our check and the bind.
            if attempt < 2 and not process.running and "in use" in process.log_tail():
                continue
            process.remove()
            raise
        except BaseException:
            process.remove()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def start_redis(
    *, label: str, timeout: float, binary: str | None = None, provider: str = "local"
) -> tuple[LocalProcess, int]:
    """Start ``redis-server`` on a free loopback port; return it and the port.

    ``binary`` defaults to the one on PATH; ``provider`` labels where it came from.
    """
    binary = binary or find_redis_server()
    if binary is None:
        raise ServiceError(
            "redis-server is not on PATH; install it (Debian: apt-get install redis-server) "
            "or use Docker."
        )
    workdir = _workdir("redis")
    version = server_version(binary) or "0"
    protected_configs = version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 7

    def make(port: int) -> LocalProcess:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]  # fmt: skip
        if protected_configs:
            # Redis 7 refuses CONFIG SET dir without it; chaos.fill_disk moves dir.
            argv += ["--enable-protected-configs", "local"]
        return LocalProcess(
            label=f"{label} (redis-server on 127.0.0.1:{port})",
            argv=argv,
            workdir=workdir,
            ready=lambda: redis_ready("127.0.0.1", port),
            log=workdir / "redis.log",
            provider=provider,
        )

    return _launch(make, timeout)


def postgres_workdir(
    bindir: Path, program: str
) -> tuple[Path, Path, list[str], tuple[int, int] | None]:
    """A fresh work directory for a PostgreSQL cluster, and how to run its programs.

    PostgreSQL refuses root: as root, the directory goes to an unprivileged user, the
    programs run through ``setpriv`` as that user (the returned prefix and owner), and
    ``bindir`` is made reachable by them. Returns ``(workdir, bindir, prefix, owner)``;
    ``program`` names what would refuse root, for the error.
    """
    workdir = _workdir("postgres")
    prefix: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        user = _unprivileged_user()
        if user is None:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ServiceError(
                f"{program} refuses to run as root and there is no 'postgres' or 'nobody' "
                "user to run it as; create one (useradd postgres) or run pytest as a normal "
                "user."
            )
        owner = (user.pw_uid, user.pw_gid)
        os.chown(workdir, *owner)
        # A virtualenv under /root is out of the server user's reach.
        bindir = reachable_bin(bindir)
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return workdir, bindir, prefix, owner


def start_postgres(
    *, label: str, timeout: float, bindir: Path | None = None, provider: str = "local"
) -> tuple[LocalProcess, int]:
    """initdb a cluster in a temporary directory and start ``postgres`` on a free port.

    ``bindir`` (holding ``initdb`` and ``postgres``) defaults to `find_postgres_bin`;
    ``provider`` labels where it came from.
    """
    bindir = bindir or find_postgres_bin()
    if bindir is None:
        raise ServiceError(
            "PostgreSQL's initdb is neither on PATH nor under /usr/lib/postgresql/*/bin; "
            "install it (Debian: apt-get install postgresql) or use Docker."
        )
    workdir, bindir, prefix, owner = postgres_workdir(bindir, "initdb")
    datadir = workdir / "data"
    pwfile = workdir / "pwfile"
    pwfile.write_text(POSTGRES_PASSWORD + "\n")
    if owner is not None:
        os.chown(pwfile, *owner)
    initdb = [*prefix, str(bindir / "initdb"), "--no-sync", "-D", str(datadir),
              "-U", POSTGRES_USER, f"--pwfile={pwfile}", "--auth-local=trust",
              "--auth-host=scram-sha-256"]  # fmt: skip
    result = subprocess.run(initdb, capture_output=True, cwd=workdir, check=False)
    pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"initdb failed (exit {result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()[-800:]}"
        )

    def make(port: int) -> LocalProcess:
        argv = [*prefix, str(bindir / "postgres"), "-D", str(datadir), "-p", str(port),
                "-k", str(workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]  # fmt: skip
        return LocalProcess(
            label=f"{label} (postgres on 127.0.0.1:{port})",
            argv=argv,
            workdir=workdir,
            ready=lambda: postgres_ready("127.0.0.1", port, POSTGRES_USER, POSTGRES_DB),
            log=workdir / "postgres.log",
            # Fast shutdown, like the official image's STOPSIGNAL: SIGTERM would wait for
            # every client to disconnect.
            stop_signal=signal.SIGINT,
            provider=provider,
        )

    return _launch(make, timeout)
