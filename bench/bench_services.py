"""How long each services provider takes to start Redis and PostgreSQL.

Not a test: run ``python bench/bench_services.py`` and copy the table into
bench/RESULTS.md. Each provider that this machine has (Docker with the images named by
PYTEST_CHAOS_REDIS_IMAGE / PYTEST_CHAOS_POSTGRES_IMAGE, binaries on the machine, the
bundled wheels) starts each service ``--repeat`` times, interleaved, in one run; a start
is measured from the call to ``chaos_services.redis()`` / ``.postgres()`` until the
server answers its protocol's probe (which is when the call returns), and includes
``initdb`` for PostgreSQL. The baseline is the local provider where it exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from datetime import UTC, datetime

from pytest_chaos.services import ChaosServices, ServiceSettings
from pytest_chaos.services._bundled import bundled_postgres_bin, bundled_redis_server
from pytest_chaos.services._local import find_postgres_bin, find_redis_server


def _available() -> list[str]:
    providers = []
    try:
        from pytest_chaos.services._docker import docker_unusable_reason

        if docker_unusable_reason() is None:
            providers.append("docker")
    except ImportError:
        pass
    if find_redis_server() is not None or find_postgres_bin() is not None:
        providers.append("local")
    if bundled_redis_server() is not None and bundled_postgres_bin() is not None:
        providers.append("bundled")
    return providers


def _start_once(provider: str, kind: str) -> tuple[float, str]:
    settings = dataclasses.replace(ServiceSettings.from_environment(), provider=provider)  # type: ignore[arg-type]
    services = ChaosServices(settings)
    try:
        started = time.perf_counter()
        service = getattr(services, kind)()
        elapsed = time.perf_counter() - started
        return elapsed, service.describe()
    finally:
        services.close()


def main() -> None:
    """Measure and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    providers = _available()
    times: dict[tuple[str, str], list[float]] = {}
    names: dict[tuple[str, str], str] = {}
    for _ in range(args.repeat):
        for kind in ("redis", "postgres"):
            for provider in providers:
                try:
                    elapsed, described = _start_once(provider, kind)
                except Exception as exc:  # e.g. no local redis-server: leave the cell empty
                    names.setdefault((provider, kind), f"n/a ({type(exc).__name__})")
                    continue
                times.setdefault((provider, kind), []).append(elapsed)
                names[(provider, kind)] = described
    load = os.getloadavg()[0]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {load:.1f}, {args.repeat} starts each "
        "(median / fastest)\n"
    )
    print("| service | provider (server) | start, median | fastest | vs local |")
    print("|---|---|---|---|---|")
    for kind in ("redis", "postgres"):
        base = times.get(("local", kind))
        for provider in providers:
            samples = times.get((provider, kind))
            if not samples:
                print(f"| {kind} | {names.get((provider, kind), provider)} | - | - | - |")
                continue
            median = statistics.median(samples)
            ratio = f"{median / statistics.median(base):.2f}x" if base else "-"
            print(
                f"| {kind} | {names[(provider, kind)]} | {median * 1000:.0f} ms | "
                f"{min(samples) * 1000:.0f} ms | {ratio} |"
            )


if __name__ == "__main__":
    main()
