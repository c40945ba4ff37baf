"""Split brain: two replicas of the shop's job scheduler, one lease, one partition.

    scheduler-a --> chaos.proxy("lease-a") --> Redis (the lease: SET NX PX)
    scheduler-b --> chaos.proxy("lease-b") --> Redis
    both        --------------------------> PostgreSQL (jobs, with a fencing token)

The replicas are ``python -m example_suite.shop.scheduler`` processes
(example_suite/shop/scheduler.py) run by ``chaos_services.process``. The leader is cut
off from the lease store while it still reaches the database: the classic split brain.
``SHOP_FRAGILE=fencing`` gives a leader that keeps leading when it cannot renew, and a
database that takes any token.
"""

from __future__ import annotations

import itertools
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from example_suite.conftest import FRAGILE, REMOVED
from example_suite.shop.harness import REPO_ROOT, create_database
from example_suite.shop.scheduler import migrate
from example_suite.shop.testbed import Backing
from pytest_chaos import Chaos, ChaosProxy
from pytest_chaos.services import ChaosServices, Service

TTL = 1.0  # the lease's time to live, seconds
_JOB = re.compile(r"^job (\S+) token=(\d+) at=([\d.]+) (\w+)", re.MULTILINE)
_LEADER = re.compile(r"^leader (\S+) token=(\d+) at=([\d.]+)", re.MULTILINE)


@dataclass
class Replica:
    """One scheduler process and the proxy it reaches the lease store through."""

    name: str
    process: Service
    lease: ChaosProxy

    def jobs(self) -> list[tuple[int, float, str]]:
        """Every job it tried: (token, unix time, accepted|fenced|failed)."""
        return [
            (int(token), float(at), outcome)
            for _name, token, at, outcome in _JOB.findall(self.process.output())
        ]

    def led_since(self) -> float | None:
        """When it first became the leader (unix time), ``None`` if it never led."""
        found = _LEADER.findall(self.process.output())
        return float(found[0][2]) if found else None


@dataclass
class Schedulers:
    """Two scheduler replicas sharing one lease and one jobs table."""

    a: Replica
    b: Replica
    database_url: str

    def written(self) -> list[tuple[int, int, str, float]]:
        """The jobs table in insertion order: (id, token, replica, unix time)."""
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute(
                "SELECT id, token, replica, at FROM scheduled_jobs ORDER BY id"
            ).fetchall()
        return [(int(r[0]), int(r[1]), str(r[2]), float(r[3])) for r in rows]


@pytest.fixture
def schedulers(
    chaos: Chaos, chaos_services: ChaosServices, backing: Backing
) -> Iterator[Schedulers]:
    """Two scheduler replicas; ``a`` is started first and leads."""
    name = f"jobs_{uuid.uuid4().hex[:10]}"
    database_url = create_database(backing.postgres_admin_url, name)
    migrate(database_url, fenced="fencing" not in REMOVED)
    env = {
        "SHOP_DATABASE_URL": database_url,
        "SHOP_LEASE_KEY": f"{name}:lease",
        "SHOP_LEASE_TTL_MS": str(int(TTL * 1000)),
        "SHOP_FRAGILE": FRAGILE,
        "PYTHONPATH": str(REPO_ROOT),
    }
    replicas: list[Replica] = []
    try:
        for replica in ("a", "b"):
            lease = chaos.proxy(f"lease-{replica}", upstream=backing.redis)
            process = chaos_services.process(
                [
                    sys.executable,
                    "-m",
                    "example_suite.shop.scheduler",
                    "--replica",
                    f"scheduler-{replica}",
                    "--port",
                    "{port}",
                ],
                ready=r"ready on 127\.0\.0\.1:(\d+)",
                env={**env, "SHOP_LEASE_URL": f"redis://{lease.address}/0"},
                name=f"scheduler-{replica}",
                cwd=REPO_ROOT,
            )
            replicas.append(Replica(f"scheduler-{replica}", process, lease))
            if replica == "a":  # a leads before b exists
                deadline = time.monotonic() + 10
                while replicas[0].led_since() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
        yield Schedulers(replicas[0], replicas[1], database_url)
    finally:
        for replica_ in replicas:
            replica_.process.remove()


@pytest.mark.chaos(blast_radius=["lease-a"])
def test_a_leader_cut_off_from_the_lease_store_gives_way_to_exactly_one_new_leader(
    chaos: Chaos, schedulers: Schedulers
) -> None:
    """Hypothesis: when the leading replica loses the lease store (a partition) but
    still reaches the database, (1) at any moment only one leader's jobs are accepted:
    the tokens in the jobs table never go back; (2) the other replica leads within the
    lease's TTL (1 s, plus 0.5 s for ticks on a loaded machine); (3) the old leader has
    no job accepted once the new one leads."""
    a, b = schedulers.a, schedulers.b
    assert a.led_since() is not None, f"scheduler-a never led:\n{a.process.output()}"
    time.sleep(0.5)
    cut = time.time()
    with chaos.partition([a.lease]):
        time.sleep(2.0)
    time.sleep(0.5)

    rows = schedulers.written()
    went_back = [(prev, row) for prev, row in itertools.pairwise(rows) if row[1] < prev[1]]
    b_led = b.led_since()
    a_after = [job for job in a.jobs() if b_led is not None and job[1] > b_led]
    tokens = sorted({row[1] for row in rows})
    summary = (
        f"{len(rows)} jobs written with tokens {tokens}; scheduler-b led "
        f"{'never' if b_led is None else f'{b_led - cut:.2f} s after the cut'}; "
        f"scheduler-a tried {len(a_after)} jobs after that "
        f"({sum(o == 'accepted' for _t, _at, o in a_after)} accepted)"
    )
    assert any(row[2] == a.name and row[3] < cut for row in rows), (
        f"the experiment did not run as designed: scheduler-a wrote nothing before the cut; "
        f"{summary}"
    )
    # (1) one leader at a time: the database saw the tokens in order
    assert not went_back, (
        f"split brain: two leaders' jobs accepted, tokens went back {len(went_back)} "
        f"times (first: id {went_back[0][0][0]} token {went_back[0][0][1]} by "
        f"{went_back[0][0][2]}, then id {went_back[0][1][0]} token {went_back[0][1][1]} by "
        f"{went_back[0][1][2]}); {summary}"
    )
    # (2) a new leader within the TTL
    assert b_led is not None and b_led - cut <= TTL + 0.5, (
        f"no new leader within the lease TTL ({TTL} s + 0.5 s): {summary}"
    )
    # (3) the old leader stopped: nothing it tried after that was accepted (it may have
    # tried once more if the machine held it between its lease check and its write:
    # the fencing token is what turns that attempt away)
    accepted_after = [job for job in a_after if job[2] == "accepted"]
    assert not accepted_after, f"the old leader kept writing after the new one led: {summary}"
