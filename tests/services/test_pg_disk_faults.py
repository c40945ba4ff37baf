"""A full disk under PostgreSQL: ``chaos.fill_disk(postgres)`` without ``path=``.

The database's tables and indexes move to a tablespace on a small filesystem (a tmpfs
mounted for the fault on a process service, the container's /dev/shm on Docker), which
is then filled. The tests check what a client sees (inserts fail with PostgreSQL's
``disk_full``, reads go on), and that healing by the test, the safety timer or teardown
after a failing test puts the data back on ``pg_default`` with the tablespace and the
mount gone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_chaos import BlastRadius
from pytest_chaos.errors import ConfigurationError, InjectionError
from pytest_chaos.experiment import _resource_faults
from pytest_chaos.services import ChaosServices, Service, SmallFilesystem

from ._proctools import eventually

pytest.importorskip("psycopg")
import psycopg

#: rows written before the fault, checked after it
ROWS = 50


def _connect(url: str, **kwargs: object) -> psycopg.Connection:
    """A session that reads text as str (Docker's image makes SQL_ASCII databases)."""
    return psycopg.connect(url, connect_timeout=10, client_encoding="UTF8", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def mounted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The tmpfs mount points the faults make in this test (other tests may mount too)."""
    paths: list[Path] = []
    mount = SmallFilesystem.mount

    def recorded(self: SmallFilesystem) -> None:
        paths.append(self.path)
        mount(self)

    monkeypatch.setattr(SmallFilesystem, "mount", recorded)
    return paths


def _mounted(path: Path) -> bool:
    with open("/proc/mounts", encoding="utf-8") as fh:
        return any(line.split()[1] == str(path) for line in fh)


def _gone(paths: list[Path]) -> bool:
    """Whether every tmpfs of the fault is unmounted and its directory removed."""
    return not any(_mounted(path) or path.exists() for path in paths)


def _need_mount(services: ChaosServices | None = None) -> None:
    """Skip a process-service test where this machine may not mount a tmpfs."""
    docker = services is not None and services.settings.provider == "docker"
    reason = SmallFilesystem.unusable_reason()
    if not docker and reason is not None:
        pytest.skip(f"this machine cannot mount a tmpfs: {reason}")


@pytest.fixture
def table(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh table name, dropped at teardown from the service the test registered."""
    name = f"disk_{uuid.uuid4().hex[:8]}"
    urls: list[str] = []
    request.node.pg_urls = urls
    yield name
    for url in urls:
        with _connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def _setup(svc: Service, table: str, request: pytest.FixtureRequest) -> psycopg.Connection:
    request.node.pg_urls.append(svc.url)
    conn = _connect(svc.url, autocommit=True)
    conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, payload text NOT NULL)")
    conn.execute(
        f"INSERT INTO {table} (payload) SELECT md5(i::text) FROM generate_series(1, {ROWS}) i"
    )
    return conn


def _mib(conn: psycopg.Connection) -> int:
    """A filesystem size that fits the database's relations with room: 8 MiB, more when
    earlier tests of this worker left tables in the shared server."""
    row = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class "
        "WHERE relkind IN ('r', 'm') AND relnamespace <> 'pg_catalog'::regnamespace"
    ).fetchone()
    assert row is not None
    return 8 + int(row[0]) // (1 << 20)


def _checksum(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    row = conn.execute(
        f"SELECT count(*), md5(string_agg(payload, ',' ORDER BY id)) FROM {table} "
        f"WHERE id <= {ROWS}"
    ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def _insert_until_full(conn: psycopg.Connection, table: str) -> psycopg.errors.DiskFull:
    """Insert rows of 2 kB (no TOAST, about four a page) until one needs a page the
    filesystem has no room for; the error PostgreSQL gave."""
    for _ in range(200):  # the last page may still take a few rows
        try:
            conn.execute(f"INSERT INTO {table} (payload) VALUES (%s)", (os.urandom(1000).hex(),))
        except psycopg.errors.DiskFull as exc:
            return exc
    raise AssertionError("200 inserts of 2 kB fitted on a full filesystem")


def _tablespaces(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT spcname FROM pg_tablespace WHERE spcname LIKE 'pytest_chaos_disk_%'"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _on_default(conn: psycopg.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT c.reltablespace = 0 AND i.reltablespace = 0 FROM pg_class c "
        "JOIN pg_index x ON x.indrelid = c.oid JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE c.oid = %s::regclass",
        (table,),
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.chaos(blast_radius=["postgres"])
def test_full_disk_makes_postgres_refuse_inserts_not_reads_until_healed(
    chaos,
    services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
) -> None:
    _need_mount(services)
    svc = services.postgres()
    conn = _setup(svc, table, request)
    before = _checksum(conn, table)
    mib = _mib(conn)
    with conn, chaos.fill_disk(svc, mib=mib) as fault:
        space = fault.attributes["tablespace"]
        assert table in fault.attributes["tables"]
        assert fault.attributes["where"] == (
            "container /dev/shm" if svc.provider == "docker" else f"tmpfs {mib} MiB"
        )
        assert _tablespaces(conn) == [space]
        assert not _on_default(conn, table)
        error = _insert_until_full(conn, table)
        assert error.sqlstate == "53100"
        assert "could not extend file" in str(error) and "No space left on device" in str(error)
        # reads go on, and so does the write-ahead log: a transaction that fits commits
        assert _checksum(conn, table) == before
        conn.execute(f"UPDATE {table} SET payload = payload WHERE id = 1")
        conn.execute(f"DELETE FROM {table} WHERE id > {ROWS}")
        with _connect(svc.url, autocommit=True) as fresh:  # new sessions log in and read
            assert _checksum(fresh, table) == before
            # a table created now lands in pg_default, which is not full
            fresh.execute(f"CREATE TABLE {table}_new AS SELECT generate_series(1, 10000) n")
            fresh.execute(f"DROP TABLE {table}_new")
        if svc.provider != "docker":
            assert len(mounted) == 1 and _mounted(mounted[0])
        healed_space = space
    with _connect(svc.url, autocommit=True) as after:
        assert _checksum(after, table) == before  # the data written before is intact
        after.execute(f"INSERT INTO {table} (payload) VALUES (%s)", ("x" * 100_000,))
        assert _on_default(after, table)
        assert healed_space not in _tablespaces(after)
    assert _gone(mounted)
    events = [(e.kind, e.name) for e in chaos.timeline.events]
    assert ("inject", "fill_disk") in events and ("heal", "fill_disk") in events


@pytest.mark.chaos(blast_radius=["postgres"])
def test_a_transaction_holding_a_lock_makes_the_fault_fail_clearly_and_leave_nothing(
    chaos,
    bundled_services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
) -> None:
    _need_mount()
    svc = bundled_services.postgres()
    with _setup(svc, table, request) as conn:
        mib = _mib(conn)
    with _connect(svc.url, application_name="sut") as holder:
        holder.execute(f"SELECT count(*) FROM {table}")  # a transaction, left open
        with pytest.raises(
            InjectionError,
            match=r"waited lock_timeout=0\.5 s.*idle in transaction, 'sut'\) holds "
            r"AccessShareLock on disk_.*Commit or roll back",
        ):
            chaos.fill_disk(svc, mib=mib, lock_timeout=0.5)
    assert chaos.faults == []
    with _connect(svc.url, autocommit=True) as conn:
        assert _tablespaces(conn) == []
        assert _on_default(conn, table)
    assert _gone(mounted)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_healing_waits_for_a_transaction_that_holds_a_lock_briefly(
    chaos,
    bundled_services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
) -> None:
    _need_mount()
    svc = bundled_services.postgres()
    with _setup(svc, table, request) as conn:
        fault = chaos.fill_disk(svc, mib=_mib(conn), lock_timeout=0.3)
    ended = threading.Event()
    with _connect(svc.url) as holder:
        holder.execute(f"SELECT count(*) FROM {table}")  # reads go on; the lock stays

        def end() -> None:
            holder.commit()
            ended.set()

        timer = threading.Timer(1.5, end)
        timer.start()
        try:
            fault.heal()  # the first tries meet the lock; a later one moves the table
        finally:
            timer.join()
        assert ended.is_set()
    with _connect(svc.url, autocommit=True) as after:
        assert _on_default(after, table) and _tablespaces(after) == []
    assert _gone(mounted)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_healing_that_cannot_move_the_tables_back_says_how_to_finish(
    chaos,
    bundled_services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _need_mount()
    monkeypatch.setattr(_resource_faults, "_PG_HEAL_SECONDS", 0.5)
    svc = bundled_services.postgres()
    conn = _setup(svc, table, request)
    with conn:
        fault = chaos.fill_disk(svc, mib=_mib(conn), lock_timeout=0.2)
        space = fault.attributes["tablespace"]
        try:
            with _connect(svc.url, application_name="sut") as holder:
                holder.execute(f"SELECT count(*) FROM {table}")
                with pytest.raises(
                    InjectionError,
                    match=rf"could not move the tables back from tablespace '{space}'.*"
                    rf"idle in transaction, 'sut'.*ALTER TABLE ALL IN TABLESPACE {space} "
                    rf"SET TABLESPACE pg_default.*DROP TABLESPACE {space}, then umount ",
                ):
                    fault.heal()
                # the filler went first: the database takes writes again
                for _ in range(20):
                    conn.execute(f"INSERT INTO {table} (payload) VALUES (%s)", ("x" * 2000,))
                assert not _on_default(conn, table)
        finally:  # the steps the message gives
            for what in ("TABLE", "INDEX", "MATERIALIZED VIEW"):
                conn.execute(f"ALTER {what} ALL IN TABLESPACE {space} SET TABLESPACE pg_default")
            conn.execute(f"DROP TABLESPACE {space}")
            for path in mounted:
                subprocess.run(["umount", str(path)], check=False)
                shutil.rmtree(path, ignore_errors=True)
    assert _gone(mounted)


@pytest.mark.chaos(blast_radius=["postgres"])
def test_tables_larger_than_the_filesystem_are_refused_with_the_size_to_give(
    chaos,
    bundled_services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
) -> None:
    _need_mount()
    svc = bundled_services.postgres()
    with _setup(svc, table, request) as conn:
        conn.execute(
            f"INSERT INTO {table} (payload) SELECT repeat(md5(i::text), 64) "
            "FROM generate_series(1, 1500) i"
        )
    with pytest.raises(ConfigurationError, match=r"does not fit a 1 MiB filesystem.*give mib="):
        chaos.fill_disk(svc, mib=1)
    assert chaos.faults == []
    assert _gone(mounted)


@pytest.mark.chaos(blast_radius=BlastRadius(targets=["postgres"], max_fault_seconds=1))
def test_the_safety_timer_moves_the_tables_back(
    chaos,
    bundled_services: ChaosServices,
    table: str,
    request: pytest.FixtureRequest,
    mounted: list[Path],
) -> None:
    _need_mount()
    svc = bundled_services.postgres()
    with _setup(svc, table, request) as conn:
        fault = chaos.fill_disk(svc, mib=_mib(conn))
        assert not _on_default(conn, table)
        assert eventually(lambda: not fault.active, timeout=30)
        assert fault.healed_by == "safety_timer"
        assert _on_default(conn, table)
        assert _tablespaces(conn) == []
        conn.execute(f"INSERT INTO {table} (payload) VALUES ('after')")
    assert _gone(mounted)


def test_teardown_after_a_failing_test_moves_the_tables_back(
    pytester: pytest.Pytester, mounted: list[Path]
) -> None:
    _need_mount()
    pytester.makepyfile(
        """
        import pathlib
        import psycopg
        import pytest

        @pytest.fixture(autouse=True)
        def after_the_heal(chaos_services):
            # set up before the chaos fixture, so torn down after it: what it left
            yield
            db = chaos_services.postgres()
            with psycopg.connect(db.url, autocommit=True) as conn:
                (spaces,) = conn.execute(
                    "SELECT count(*) FROM pg_tablespace WHERE spcname LIKE 'pytest_chaos%'"
                ).fetchone()
                (where,) = conn.execute(
                    "SELECT reltablespace FROM pg_class WHERE relname = 'orders'"
                ).fetchone()
                conn.execute("INSERT INTO orders VALUES (2)")
            pathlib.Path("after.txt").write_text(f"{spaces} {where}")

        @pytest.mark.chaos(blast_radius=["postgres"])
        def test_fails_with_a_full_disk(chaos, chaos_services):
            db = chaos_services.postgres()
            with psycopg.connect(db.url, autocommit=True) as conn:
                conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
                conn.execute("INSERT INTO orders VALUES (1)")
            chaos.fill_disk(db, mib=8)
            assert False, "the test fails with the disk full"
        """
    )
    journal = pytester.path / "journal"
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--chaos-services=bundled", f"--chaos-journal={journal}"
    )
    result.assert_outcomes(failed=1)
    (path,) = (journal / "tests").glob("*.json")
    events = json.loads(path.read_text())["timeline"]["events"]
    (inject,) = [e for e in events if e["kind"] == "inject"]
    assert inject["data"]["attributes"]["tables"] == ["orders"]
    heals = [(e["name"], e["data"]["by"]) for e in events if e["kind"] == "heal"]
    assert heals == [("fill_disk", "teardown")]
    # after the heal: no tablespace left, the table back on pg_default and writable
    assert (pytester.path / "after.txt").read_text() == "0 0"
    assert _gone(mounted)
