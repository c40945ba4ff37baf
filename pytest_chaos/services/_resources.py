"""What resource faults need from the machine: workers, container settings, server talk.

The experiment's resource faults (``chaos.cpu_stress``, ``memory_limit``, ``fill_disk``,
``exhaust_connections``, ...) decide *what* to do; this module does it:

- `CpuWorkers` / `MemoryHog`: helper processes on this host, beside a process service.
  They are children of the test process and exit by themselves when it dies (they
  watch their parent pid), so a SIGKILLed pytest leaves no busy loop behind.
- `ContainerWorkers`: the same inside a container (``docker exec`` of a shell loop that
  stops when a stop file appears), for Docker services.
- `container_limits` / `update_container`: the container's cgroup settings
  (``docker update``), read before and restored after.
- `redis_call`: just enough RESP to ``CONFIG GET``/``CONFIG SET`` and ``PING``.
- `ConnectionHolder`: real sessions held open against Redis or PostgreSQL (PostgreSQL
  counts only authenticated sessions towards ``max_connections``, so it logs in with
  psycopg).
- `SmallFilesystem`: a size-limited tmpfs mounted for a process service (needs root).
- `PostgresTablespace`: a PostgreSQL database's tables and indexes moved onto a
  tablespace (on a small filesystem) and back, for ``fill_disk``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pytest_chaos.errors import ServiceError
from pytest_chaos.services._owner import owner_is_dead, owner_token

__all__ = [
    "FILLER_NAME",
    "Confinement",
    "ConnectionHolder",
    "ContainerWorkers",
    "CpuWorkers",
    "DutyCycle",
    "MemoryHog",
    "PostgresTablespace",
    "RedisReplyError",
    "ResourceUnsupported",
    "SmallFilesystem",
    "TablespaceLocked",
    "container_limits",
    "container_of",
    "fill_directory",
    "fill_redis",
    "redis_call",
    "redis_password",
    "restore_memory_limit",
    "unfill_redis",
    "update_container",
    "wait_for",
]

#: seconds of one busy/idle duty cycle of a CPU worker
CYCLE_SECONDS = 0.1

# A CPU worker: busy for `busy` seconds of every `cycle`, idle for the rest; exits when
# its parent (the test process) is gone.
_CPU_WORKER = """
import os, sys, time
parent, busy, cycle = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
while os.getppid() == parent:
    start = time.perf_counter()
    while time.perf_counter() - start < busy:
        pass
    if cycle > busy:
        time.sleep(cycle - busy)
"""

# Holds `mib` MiB with every page written (an untouched allocation costs no memory).
_MEMORY_HOG = """
import os, sys, time
parent, mib = int(sys.argv[1]), int(sys.argv[2])
block = bytearray(mib * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
print("holding", mib, flush=True)
while os.getppid() == parent:
    time.sleep(0.2)
"""


def container_of(runtime: Any) -> Any:
    """The docker SDK container behind a Docker service's runtime."""
    return runtime.container


# -- helper processes on this host ---------------------------------------------------


class CpuWorkers:
    """``cores`` processes on this host, each ``percent`` % busy, on ``cpus``."""

    def __init__(self, cores: int, percent: float, cpus: set[int] | None) -> None:
        self.cores = cores
        self.percent = percent
        self.cpus = cpus
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the workers (pinned to ``cpus`` when given)."""
        busy = CYCLE_SECONDS * self.percent / 100.0
        for _ in range(self.cores):
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CPU_WORKER,
                    str(os.getpid()),
                    str(busy),
                    str(CYCLE_SECONDS),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._procs.append(proc)
            if self.cpus and hasattr(os, "sched_setaffinity"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(proc.pid, self.cpus)

    @property
    def pids(self) -> list[int]:
        """The pids of the workers still running."""
        return [p.pid for p in self._procs if p.poll() is None]

    def stop(self) -> None:
        """Kill every worker and reap it. Idempotent."""
        _end(self._procs)
        self._procs.clear()


class MemoryHog:
    """A process on this host holding ``mib`` MiB of written memory."""

    def __init__(self, mib: int) -> None:
        self.mib = mib
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until every page is written."""
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEMORY_HOG, str(os.getpid()), str(self.mib)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._proc = proc
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until it holds the memory, or died
        if not line.startswith(b"holding"):
            proc.wait(timeout=timeout)
            err = proc.stderr.read().decode(errors="replace")[-400:] if proc.stderr else ""
            raise ServiceError(
                f"the process meant to hold {self.mib} MiB exited (code {proc.returncode}) "
                f"before it held them: {err.strip() or 'no output'}. Ask for fewer MiB."
            )

    @property
    def pid(self) -> int | None:
        """Its pid while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def stop(self) -> None:
        """Kill it and reap it. Idempotent."""
        if self._proc is not None:
            _end([self._proc])
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (through parent pids in /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:  # no procfs (macOS): the process itself is what can be reached
        return [pid]
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree = [pid]
    for current in tree:  # grows while iterated: breadth-first
        tree.extend(children.get(current, []))
    return tree


class Confinement:
    """Every thread of a process tree confined to ``cpus``; `release` puts back what
    each thread had."""

    def __init__(self, pid: int, cpus: set[int]) -> None:
        self.pid = pid
        self.cpus = cpus
        self._before: dict[int, set[int]] = {}

    def apply(self) -> None:
        """Confine every thread of the tree (threads started later inherit it)."""
        for proc in process_tree(self.pid):
            try:
                threads = [int(t) for t in os.listdir(f"/proc/{proc}/task")]
            except OSError:
                threads = [proc]  # no procfs: the process's own affinity
            for tid in threads:
                try:
                    self._before[tid] = set(os.sched_getaffinity(tid))
                    os.sched_setaffinity(tid, self.cpus)
                except OSError:  # the thread ended meanwhile
                    continue

    def release(self) -> None:
        """Give each thread its CPUs back (gone threads are skipped)."""
        before, self._before = self._before, {}
        for tid, cpus in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)


class DutyCycle:
    """A CPU quota for a process tree without a cgroup: it runs ``share`` of every
    ``period`` seconds and is frozen (SIGSTOP) for the rest, by a thread of this process.

    For a busy server this is what a CFS quota does (run until the quota is used, then
    throttled until the period ends); an idle one only waits longer to start answering.
    `stop` continues the tree (SIGCONT) and ends the thread.
    """

    def __init__(self, pid: int, share: float, period: float = 0.1) -> None:
        self.pid = pid
        self.share = share
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._frozen: list[int] = []

    def _signal(self, sig: signal.Signals) -> None:
        pids = process_tree(self.pid) if sig == signal.SIGSTOP else self._frozen
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        self._frozen = pids if sig == signal.SIGSTOP else []

    def _run(self) -> None:
        running = self.period * self.share
        while not self._stop.is_set():
            if self._stop.wait(running):
                break
            self._signal(signal.SIGSTOP)
            self._stop.wait(self.period - running)
            self._signal(signal.SIGCONT)

    def start(self) -> None:
        """Start throttling."""
        self._thread = threading.Thread(target=self._run, name="pytest-chaos-throttle", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop throttling: the tree runs freely again. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._signal(signal.SIGCONT)


def _end(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


# -- inside a container --------------------------------------------------------------


class ContainerWorkers:
    """``cores`` shell loops inside a container, ``percent`` % busy each.

    Every loop checks a stop file once per cycle; `stop` creates it and waits until the
    ``docker exec`` has ended. Needs ``sh``, ``timeout`` and ``sleep`` in the image
    (every Debian- or Alpine-based image has them).
    """

    def __init__(self, container: Any, cores: int, percent: float) -> None:
        self.container = container
        self.cores = cores
        self.percent = percent
        self.stop_file = f"/tmp/.pytest-chaos-cpu-{uuid.uuid4().hex[:10]}"
        self._exec_id: str | None = None

    def script(self) -> str:
        """The shell script run in the container."""
        stop = self.stop_file
        if self.percent >= 100:
            loop = f"while [ ! -e {stop} ]; do :; done"
        else:
            busy = CYCLE_SECONDS * self.percent / 100.0
            idle = CYCLE_SECONDS - busy
            spin = "while :; do :; done"
            loop = (
                f"while [ ! -e {stop} ]; do timeout {busy:.3f} sh -c '{spin}'; "
                f"sleep {idle:.3f}; done"
            )
        workers = " ".join(["(" + loop + ") &"] * self.cores)
        return f"{workers} wait; rm -f {stop}"

    def start(self) -> None:
        """``docker exec`` the loops (detached)."""
        api = self.container.client.api
        created = api.exec_create(self.container.id, ["sh", "-c", self.script()])
        self._exec_id = created["Id"]
        api.exec_start(self._exec_id, detach=True)
        # Fail now, not at heal, when the image has no shell.
        time.sleep(0.05)
        info = api.exec_inspect(self._exec_id)
        if not info.get("Running") and info.get("ExitCode") not in (None, 0):
            raise ServiceError(
                f"the CPU workers exited at once in container {self.container.short_id} "
                f"(exit {info.get('ExitCode')}): the image needs sh, timeout and sleep."
            )

    def running(self) -> bool:
        """Whether the exec still runs."""
        if self._exec_id is None:
            return False
        try:
            return bool(self.container.client.api.exec_inspect(self._exec_id).get("Running"))
        except Exception:  # the container is gone: so are its processes
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Create the stop file and wait until the loops have ended."""
        if self._exec_id is None:
            return
        try:
            self.container.exec_run(["touch", self.stop_file])
        except Exception:  # a stopped or removed container runs no loops
            self._exec_id = None
            return
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(Exception):
            self.container.exec_run(["rm", "-f", self.stop_file])
        if self.running():
            raise ServiceError(
                f"the CPU workers in container {self.container.short_id} did not stop "
                f"within {timeout:.0f} s of {self.stop_file} appearing."
            )
        self._exec_id = None


def container_limits(container: Any) -> dict[str, int]:
    """The container's CPU and memory settings now, as ``docker update`` names them."""
    container.reload()
    host = container.attrs.get("HostConfig", {})
    return {
        "cpu_period": int(host.get("CpuPeriod") or 0),
        "cpu_quota": int(host.get("CpuQuota") or 0),
        "mem_limit": int(host.get("Memory") or 0),
        "memswap_limit": int(host.get("MemorySwap") or 0),
    }


class ResourceUnsupported(ServiceError):
    """The machine cannot apply a resource setting (no cgroup controller, rootless)."""


#: what engines say when the kernel or the cgroup setup lacks a controller
_UNSUPPORTED = ("does not support", "not supported", "no such file", "cgroup", "rootless")


def update_container(container: Any, **settings: int) -> None:
    """``docker update`` with the given settings (a ``0`` CPU quota: none).

    Raises `ResourceUnsupported` when the engine says the machine cannot apply them.
    """
    changes = dict(settings)
    # The engine reads 0 as "leave unchanged"; -1 removes a CPU quota.
    if changes.get("cpu_quota") == 0:
        changes["cpu_quota"] = -1
    try:
        container.update(**changes)
    except Exception as exc:
        text = str(exc)
        if any(marker in text.lower() for marker in _UNSUPPORTED):
            raise ResourceUnsupported(
                f"the Docker engine cannot apply {sorted(changes)} to this container: {text}"
            ) from exc
        raise


def restore_memory_limit(container: Any, before: dict[str, int]) -> None:
    """Put a container's memory limit back as `container_limits` read it.

    Docker cannot remove a memory limit once set; a container that had none gets the
    Docker host's memory as its limit, with unlimited swap: no limit in practice. The
    swap limit goes up first: cgroup v1 refuses a memory limit above it.
    """
    total = int(container.client.info().get("MemTotal") or 0)
    memory = before["mem_limit"] or total
    if not memory:
        return
    swap = before["memswap_limit"] if before["mem_limit"] else -1
    ceiling = max(2 * memory, 2 * total, swap)
    container.update(memswap_limit=ceiling)
    container.update(mem_limit=memory, memswap_limit=ceiling)
    if swap != ceiling:
        container.update(mem_limit=memory, memswap_limit=swap)


# -- Redis and PostgreSQL ------------------------------------------------------------


def _read_reply(stream: Any) -> Any:
    line = stream.readline()
    if not line:
        raise ConnectionError("the server closed the connection")
    kind, rest = line[:1], line[1:].rstrip(b"\r\n")
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisReplyError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected reply from the server: {line[:80]!r}")


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) from Redis."""


def _encode(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def redis_call(address: tuple[str, int], *args: str, password: str | None = None) -> Any:
    """Send one command to Redis at ``address``; return its reply, raise on an error reply."""
    with socket.create_connection(address, timeout=10) as sock, sock.makefile("rb") as stream:
        if password:
            sock.sendall(_encode("AUTH", password))
            reply = _read_reply(stream)
            if isinstance(reply, RedisReplyError):
                raise reply
        sock.sendall(_encode(*args))
        reply = _read_reply(stream)
    if isinstance(reply, RedisReplyError):
        raise reply
    return reply


def fill_redis(address: tuple[str, int], password: str | None, *, prefix: str) -> int:
    """Write 64 KiB keys named ``prefix<n>`` until Redis refuses one (OOM); how many it took.

    One connection, pipelined in batches, so a full Redis is reached in a fraction of a
    second. Gives up after 64 MiB beyond what Redis had: a limit that high is no limit.
    """
    value = "x" * (64 * 1024)
    written = 0
    with socket.create_connection(address, timeout=10) as sock, sock.makefile("rb") as stream:
        if password:
            sock.sendall(_encode("AUTH", password))
            reply = _read_reply(stream)
            if isinstance(reply, RedisReplyError):
                raise reply
        while written < 1024:
            batch = 16
            sock.sendall(
                b"".join(_encode("SET", f"{prefix}{written + i}", value) for i in range(batch))
            )
            replies = [_read_reply(stream) for _ in range(batch)]
            refused = [r for r in replies if isinstance(r, RedisReplyError)]
            written += batch - len(refused)
            if refused:
                if not str(refused[0]).startswith("OOM"):
                    raise refused[0]
                return written
    raise ServiceError(
        f"Redis at {address[0]}:{address[1]} took 64 MiB of filler without refusing a write: "
        "its maxmemory is not in force."
    )


def unfill_redis(address: tuple[str, int], password: str | None, *, prefix: str) -> None:
    """Delete the keys `fill_redis` wrote under ``prefix``."""
    with socket.create_connection(address, timeout=10) as sock, sock.makefile("rb") as stream:
        if password:
            sock.sendall(_encode("AUTH", password))
            _read_reply(stream)
        cursor = "0"
        while True:
            sock.sendall(_encode("SCAN", cursor, "MATCH", f"{prefix}*", "COUNT", "1000"))
            reply = _read_reply(stream)
            if isinstance(reply, RedisReplyError):
                raise reply
            cursor, keys = reply
            if keys:
                sock.sendall(_encode("UNLINK", *keys))
                _read_reply(stream)
            if cursor == "0":
                return


def redis_password(url: str) -> str | None:
    """The password in a ``redis://`` URL, if any."""
    password = urlsplit(url).password
    return unquote(password) if password else None


class ConnectionHolder:
    """Real sessions held open against Redis or PostgreSQL at ``address``.

    ``kind`` is ``redis`` or ``postgres``; ``url`` carries the credentials and database
    (its host and port are replaced by ``address``, e.g. a proxy's). `fill` opens sessions
    until ``n`` are open or the server refuses one for its connection limit; everything
    is closed by `close`.
    """

    def __init__(self, kind: str, url: str, address: tuple[str, int]) -> None:
        self.kind = kind
        self.url = url
        self.address = address
        self._held: list[Any] = []
        #: the server's refusal, word for word, once one came
        self.refusal: str | None = None

    @property
    def count(self) -> int:
        """Sessions open now."""
        return len(self._held)

    def _open_redis(self) -> Any:
        sock = socket.create_connection(self.address, timeout=10)
        try:
            password = redis_password(self.url)
            commands = ([_encode("AUTH", password)] if password else []) + [_encode("PING")]
            stream = sock.makefile("rb")
            try:
                for command in commands:
                    sock.sendall(command)
                    reply = _read_reply(stream)
                    if isinstance(reply, RedisReplyError):
                        raise (
                            _Refused(str(reply)) if "max number of clients" in str(reply) else reply
                        )
            finally:
                stream.close()
        except ConnectionError as exc:
            sock.close()
            # Redis answers the refused client and closes it at once; a reset may win.
            raise _Refused(f"connection closed by the server ({exc})") from exc
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        return sock

    def _open_postgres(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise ServiceError(
                "holding PostgreSQL sessions needs psycopg (PostgreSQL counts only logged-in "
                "sessions towards max_connections): pip install 'psycopg[binary]'."
            ) from None
        parts = urlsplit(self.url)
        try:
            return psycopg.connect(
                host=self.address[0],
                port=self.address[1],
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=parts.path.lstrip("/") or "postgres",
                connect_timeout=10,
                application_name="pytest-chaos-exhaust",
            )
        except psycopg.OperationalError as exc:
            # 53300: too_many_connections (both "sorry, too many clients already" and
            # "remaining connection slots are reserved")
            if exc.sqlstate == "53300" or "too many clients" in str(exc):
                raise _Refused(str(exc).strip()) from exc
            raise

    def _open(self) -> Any:
        return self._open_redis() if self.kind == "redis" else self._open_postgres()

    def fill(self, n: int | None, *, parallel: int = 8) -> int:
        """Open sessions until ``n`` are held (``None``: until the server refuses one).

        Returns how many are held. Other errors than the limit are raised.
        """
        want = n if n is not None else 100_000
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            while self.count < want and self.refusal is None:
                batch = min(parallel, want - self.count)
                futures = [pool.submit(self._open) for _ in range(batch)]
                error: BaseException | None = None
                for future in futures:
                    try:
                        self._held.append(future.result())
                    except _Refused as refused:
                        self.refusal = str(refused)
                    except Exception as exc:
                        error = error or exc
                if error is not None:
                    raise ServiceError(
                        f"opening a {self.kind} session at {self.address[0]}:{self.address[1]} "
                        f"failed after {self.count} were open: {error}"
                    ) from error
        return self.count

    def close(self, settle: float = 10.0) -> None:
        """Close every session, then wait up to ``settle`` s until the server takes a new
        one: PostgreSQL's backends exit a moment after their client hangs up, and the
        next login must not meet a full server. Idempotent."""
        held, self._held = self._held, []
        for item in held:
            with contextlib.suppress(Exception):
                item.close()
        if not held or self.refusal is None:
            return
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            try:
                probe = self._open()
            except _Refused:
                time.sleep(0.02)
                continue
            except Exception:  # the server is gone or down: nothing to wait for
                return
            with contextlib.suppress(Exception):
                probe.close()
            return


class _Refused(Exception):
    """The server refused a session for its connection limit."""


# -- a small filesystem for a process service ----------------------------------------


#: the bit of CAP_SYS_ADMIN in /proc/<pid>/status's capability masks
_CAP_SYS_ADMIN = 21


def _has_sys_admin() -> bool:
    """Whether this process may mount (its effective capabilities hold CAP_SYS_ADMIN);
    True when the kernel does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_SYS_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        pass
    return True


class SmallFilesystem:
    """A tmpfs of ``mib`` MiB mounted on a fresh directory (root only), then filled.

    ``owner`` (uid, gid) gets the directory, for a server that runs as another user.
    """

    def __init__(self, mib: int, owner: tuple[int, int] | None = None) -> None:
        self.mib = mib
        self.owner = owner
        sweep_dead_mounts()
        # pytest-chaos-disk-XXXX/{owner, fs}: the owner file names this pytest process
        # (the mount would hide it inside fs), so a later run can unmount what a killed
        # one left behind
        self.home = Path(tempfile.mkdtemp(prefix=_DISK_PREFIX))
        os.chmod(self.home, 0o755)
        (self.home / _DISK_OWNER).write_text(owner_token())
        self.path = self.home / "fs"
        self.path.mkdir(mode=0o755)
        self.mounted = False

    @staticmethod
    def unusable_reason() -> str | None:
        """Why this machine cannot mount one, or ``None`` when it can (probably)."""
        if not sys.platform.startswith("linux"):
            return f"mounting a tmpfs is Linux-only (this is {sys.platform})"
        if os.geteuid() != 0:
            return (
                f"mounting a size-limited tmpfs needs root (CAP_SYS_ADMIN); this process "
                f"runs as uid {os.geteuid()}"
            )
        if not _has_sys_admin():
            return (
                "mounting a size-limited tmpfs needs CAP_SYS_ADMIN, which this root process "
                "lacks (an unprivileged container: run it with --cap-add SYS_ADMIN, or use a "
                "Docker service)"
            )
        if shutil.which("mount") is None:
            return "the mount command is not on PATH"
        return None

    def mount(self) -> None:
        """Mount the tmpfs; `ServiceError` with the system's words when it fails."""
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.mib}m,mode=0755", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ServiceError(
                f"mount -t tmpfs on {self.path} failed (exit {result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        self.mounted = True
        if self.owner is not None:
            os.chown(self.path, *self.owner)

    def fill(self, leave_bytes: int = 0) -> int:
        """Write a filler file until the filesystem is full (``leave_bytes`` left free)."""
        return fill_directory(self.path, leave_bytes)

    def remove(self) -> None:
        """Unmount (lazily if busy) and delete the directory. Idempotent."""
        if self.mounted:
            _unmount(self.path)
            self.mounted = False
        shutil.rmtree(self.home, ignore_errors=True)


_DISK_PREFIX = "pytest-chaos-disk-"
_DISK_OWNER = "owner"


def _unmount(path: Path) -> None:
    result = subprocess.run(["umount", str(path)], capture_output=True, check=False)
    if result.returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def sweep_dead_mounts() -> list[str]:
    """Unmount and delete the small filesystems of pytest processes that died before
    they could heal their full-disk fault (SIGKILL, a killed xdist worker); what was
    removed, for the report. The owner file in each one's directory names its process."""
    removed: list[str] = []
    for home in Path(tempfile.gettempdir()).glob(f"{_DISK_PREFIX}*"):
        try:
            owner = (home / _DISK_OWNER).read_text().strip()
        except OSError:
            continue
        if not owner_is_dead(owner):
            continue
        if os.path.ismount(home / "fs"):
            _unmount(home / "fs")
        shutil.rmtree(home, ignore_errors=True)
        removed.append(f"tmpfs {home / 'fs'}")
    return removed


FILLER_NAME = ".pytest-chaos-filler"


def fill_directory(path: Path, leave_bytes: int = 0) -> int:
    """Write ``path/.pytest-chaos-filler`` until the filesystem has ``leave_bytes`` free."""
    target = path / FILLER_NAME
    written = 0
    chunk = b"\0" * (1 << 20)
    with open(target, "ab") as fh:
        while True:
            free = shutil.disk_usage(path).free
            room = free - leave_bytes
            if room <= 0:
                break
            try:
                fh.write(chunk[: min(len(chunk), room)])
                fh.flush()
            except OSError:  # ENOSPC: full
                break
            written += min(len(chunk), room)
    return written


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- a PostgreSQL database's relations on a tablespace of their own -------------------------


#: relation kinds moved by `PostgresTablespace`: ALTER <what> ALL IN TABLESPACE
_MOVABLE = (("TABLE", "r"), ("MATERIALIZED VIEW", "m"), ("INDEX", "i"))
#: the first oid of a user object: locks on lower oids are the catalogs'
_FIRST_USER_OID = 16384


def _text(value: object) -> str:
    """A text value from psycopg: bytes in a SQL_ASCII database (as Docker's image has)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class TablespaceLocked(ServiceError):
    """Moving relations waited for their locks longer than the lock timeout.

    ``holders`` names the other sessions holding locks on the database's relations,
    e.g. ``pid 4242 (idle in transaction, 'shop') holds AccessShareLock on orders``.
    """

    def __init__(self, message: str, holders: list[str]) -> None:
        super().__init__(message)
        self.holders = holders


class PostgresTablespace:
    """The relations of one PostgreSQL database moved to a tablespace and back.

    ``url`` is the service's (a superuser's: only a superuser may create a
    tablespace); the database is the URL's. `create` makes the tablespace at
    ``location`` (an empty directory the server's user owns), `move_in` moves the
    database's tables, materialized views and indexes from ``pg_default`` onto it (one
    transaction, each ``ALTER ... ALL IN TABLESPACE`` taking ACCESS EXCLUSIVE locks,
    waiting at most ``lock_timeout`` seconds for them), `move_out` moves them back and
    `drop` drops it. System catalogs, sequences and the write-ahead log stay where
    they are. Every call opens its own session (autocommit), so undo may run on
    another thread (the safety timer's).
    """

    def __init__(self, url: str, name: str, lock_timeout: float) -> None:
        self.url = url
        self.name = name
        self.lock_timeout = lock_timeout
        self.created = False

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise ServiceError(
                "moving PostgreSQL tables to a small filesystem needs psycopg: "
                "pip install 'psycopg[binary]'."
            ) from None
        return psycopg.connect(
            self.url, autocommit=True, connect_timeout=10, application_name="pytest-chaos-disk"
        )

    def database(self) -> str:
        """The database whose relations move (the URL's)."""
        with self._connect() as conn:
            return _text(conn.execute("SELECT current_database()").fetchone()[0])

    def data_directory(self) -> str:
        """The server's data directory (its owner is the server's user)."""
        with self._connect() as conn:
            return _text(conn.execute("SHOW data_directory").fetchone()[0])

    def default_bytes(self) -> int:
        """Bytes the movable relations in ``pg_default`` take (tables with their TOAST
        and indexes, materialized views)."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.reltablespace = 0 "
                "AND c.relkind IN ('r', 'm') AND n.nspname <> 'pg_catalog' "
                "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
            ).fetchone()
        return int(row[0])

    def create(self, location: str) -> None:
        """CREATE TABLESPACE at ``location`` (an empty directory the server owns)."""
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(
                sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                    sql.Identifier(self.name), sql.Literal(location)
                )
            )
        self.created = True

    def relations(self) -> list[str]:
        """The tables and materialized views on the tablespace now, by name
        (information_schema's own tables, which move too, left out)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_tablespace t "
                "ON t.oid = c.reltablespace WHERE t.spcname = %s AND c.relkind IN ('r', 'm') "
                "ORDER BY 1",
                (self.name,),
            ).fetchall()
        names = [_text(row[0]) for row in rows]
        return [name for name in names if not name.startswith("information_schema.")]

    def move_in(self) -> None:
        """Move the relations from ``pg_default`` onto the tablespace (`TablespaceLocked`
        when their locks are held longer than the lock timeout)."""
        self._move("pg_default", self.name)

    def move_out(self) -> None:
        """Move the relations on the tablespace back to ``pg_default``."""
        self._move(self.name, "pg_default")

    def _move(self, source: str, target: str) -> None:
        import psycopg
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(f"{int(self.lock_timeout * 1000)}ms")
                )
            )
            try:
                with conn.transaction():
                    for what, _ in _MOVABLE:
                        conn.execute(
                            sql.SQL("ALTER {} ALL IN TABLESPACE {} SET TABLESPACE {}").format(
                                sql.SQL(what), sql.Identifier(source), sql.Identifier(target)
                            )
                        )
            except psycopg.errors.LockNotAvailable as exc:
                holders = self._holders(conn)
                raise TablespaceLocked(str(exc).strip(), holders) from exc

    def _holders(self, conn: Any) -> list[str]:
        rows = conn.execute(
            "SELECT DISTINCT a.pid, coalesce(a.state, '?'), coalesce(a.application_name, ''), "
            "l.mode, l.relation::regclass::text FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND l.relation >= %s AND a.pid <> pg_backend_pid() "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY 1 LIMIT 5",
            (_FIRST_USER_OID,),
        ).fetchall()
        held = []
        for pid, state, app, mode, rel in rows:
            name = f", {_text(app)!r}" if app else ""
            held.append(f"pid {pid} ({_text(state)}{name}) holds {_text(mode)} on {_text(rel)}")
        return held

    def drop(self) -> None:
        """DROP TABLESPACE (idempotent). PostgreSQL checkpoints first when files of moved
        relations are still there."""
        if not self.created:
            return
        from psycopg import sql

        with self._connect() as conn:
            conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(self.name)))
        self.created = False

    def exists(self) -> bool:
        """Whether the tablespace is there."""
        with self._connect() as conn:
            row = conn.execute("SELECT 1 FROM pg_tablespace WHERE spcname = %s", (self.name,))
            return row.fetchone() is not None
