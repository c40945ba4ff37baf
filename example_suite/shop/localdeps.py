"""Real Redis and PostgreSQL servers as local processes, for when no service fixture is given.

pytest-chaos's ``chaos_services`` fixture provides containers or local binaries; this
module is the example suite's own fallback so that the shop can be exercised before (or
without) that fixture. Both servers bind 127.0.0.1 on a free port and are always stopped.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["LocalPostgres", "LocalRedis", "free_port"]

PG_BIN = Path(os.environ.get("SHOP_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A port that was free a moment ago (the servers below retry if it is taken)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.05)
    return False


class LocalRedis:
    """``redis-server`` on 127.0.0.1, no persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; apt-get install redis-server")
        self._dir = Path(tempfile.mkdtemp(prefix="shop-redis-"))
        for _ in range(5):
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self._dir),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            if _wait_port(self.port, self.process, 10.0):
                return
            self._end()
        shutil.rmtree(self._dir, ignore_errors=True)
        raise RuntimeError("redis-server did not start on a free port after 5 attempts")

    def __repr__(self) -> str:
        return f"<LocalRedis 127.0.0.1:{self.port} pid={self.process.pid}>"

    @property
    def host(self) -> str:
        """127.0.0.1."""
        return "127.0.0.1"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``redis://host:port/0``."""
        return f"redis://{self.address}/0"

    def _end(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._end()
        shutil.rmtree(self._dir, ignore_errors=True)


class LocalPostgres:
    """A throwaway PostgreSQL cluster (initdb, trust auth, fsync off) on 127.0.0.1."""

    user = "postgres"

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(
                f"PostgreSQL binaries not found in {PG_BIN}; apt-get install postgresql "
                "or set SHOP_PG_BIN"
            )
        # PostgreSQL refuses to run as root: run it as the postgres user, in a directory
        # that user owns.
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self._dir = Path(tempfile.mkdtemp(prefix="shop-pg-"))
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        self.data = self._dir / "data"
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        for _ in range(5):
            self.port = free_port()
            opts = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self._dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=300"
            )
            result = self._run(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-w",
                    "-t",
                    "30",
                    "-l",
                    str(self._dir / "log"),
                    "start",
                ],
                check=False,
            )
            if result.returncode == 0:
                return
        log = (self._dir / "log").read_text(errors="replace")[-2000:]
        shutil.rmtree(self._dir, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start after 5 attempts; log:\n{log}")

    def __repr__(self) -> str:
        return f"<LocalPostgres 127.0.0.1:{self.port} data={self.data}>"

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            argv,
            user=self._run_as,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return result

    @property
    def host(self) -> str:
        """127.0.0.1."""
        return "127.0.0.1"

    @property
    def address(self) -> str:
        """``host:port``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``postgresql://postgres@host:port/postgres``."""
        return f"postgresql://{self.user}@{self.address}/postgres"

    def stop(self) -> None:
        """Stop the cluster (immediate mode) and remove its files."""
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=False,
        )
        shutil.rmtree(self._dir, ignore_errors=True)
