"""Benchmarks of the plugin core: per-test fixture overhead and plugin load cost.

Run: ``python bench/bench_plugin.py`` (prints a Markdown table for bench/RESULTS.md).

1. Controller overhead per chaos test on the embedded backend: what the ``chaos``
   fixture does for a typical test (create the controller, create a proxy, inject a
   latency fault, heal it, tear down with the server check), against a real
   EmbeddedServer. Baseline in the same run: one bare ``GET /version`` round trip.
2. The same through pytest: N generated chaos tests minus N plain tests, per test.
3. Plugin load cost: ``pytest --collect-only`` in an empty folder with and without
   ``-p no:chaos``, and the in-process import time of the plugin modules.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_controller(rounds: int = 300) -> dict[str, float]:
    """Median ms of create proxy + inject + heal + teardown, and of a bare API call."""
    from pytest_chaos.client import ToxiproxyClient
    from pytest_chaos.experiment import BlastRadius, ChaosSpec
    from pytest_chaos.experiment._chaos import Chaos
    from pytest_chaos.proxy import EmbeddedServer

    spec = ChaosSpec("bench::test", BlastRadius(targets=["db"]))
    with EmbeddedServer() as server, ToxiproxyClient(server.url, embedded=True) as client:
        for _ in range(20):  # warm-up: imports, connection, code paths
            client.version()
        api: list[float] = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            client.version()
            api.append(time.perf_counter() - t0)
        cycle: list[float] = []
        for i in range(rounds):
            t0 = time.perf_counter()
            chaos = Chaos(client=client, spec=spec, nodeid=f"bench::{i}", seed=1, run_id="b")
            proxy = chaos.proxy("db", upstream="127.0.0.1:9")
            proxy.latency(100).heal()
            chaos.teardown()
            cycle.append(time.perf_counter() - t0)
    return {
        "cycle_ms": _median_ms(cycle),
        "cycle_min_ms": min(cycle) * 1000,
        "api_call_ms": _median_ms(api),
    }


CHAOS_TESTS = """
import pytest

@pytest.mark.chaos(blast_radius=["db"])
@pytest.mark.parametrize("i", range({n}))
def test_chaos(chaos, i):
    proxy = chaos.proxy("db", upstream="127.0.0.1:9")
    proxy.latency(100).heal()
"""

PLAIN_TESTS = """
import pytest

@pytest.mark.parametrize("i", range({n}))
def test_plain(i):
    pass
"""


def _run_pytest(folder: Path, *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def bench_through_pytest(n: int = 300, repeats: int = 3) -> dict[str, float]:
    """Per-test ms of a chaos test over a plain test, both run by pytest."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_chaos.py").write_text(textwrap.dedent(CHAOS_TESTS.format(n=n)))
        (folder / "test_plain.py").write_text(textwrap.dedent(PLAIN_TESTS.format(n=n)))
        chaos = min(_run_pytest(folder, "test_chaos.py") for _ in range(repeats))
        plain = min(_run_pytest(folder, "test_plain.py") for _ in range(repeats))
    return {"per_test_ms": (chaos - plain) / n * 1000, "chaos_s": chaos, "plain_s": plain}


def bench_load(repeats: int = 15) -> dict[str, float]:
    """pytest start with and without the plugin, and the plugin's own import time."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="")
        args = ["--collect-only", "-q", "-p", "no:cacheprovider"]
        with_plugin: list[float] = []
        without: list[float] = []
        for _ in range(repeats):  # interleaved so machine noise hits both alike
            for bucket, extra in ((with_plugin, []), (without, ["-p", "no:chaos"])):
                t0 = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "pytest", *args, *extra],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                )
                bucket.append(time.perf_counter() - t0)
    code = (
        "import time, pytest; t = time.perf_counter(); import pytest_chaos.plugin as p; "
        "[__import__(m) for m in p.pytest_plugins]; print(time.perf_counter() - t)"
    )
    imports = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeats)
    ]
    return {
        "start_with_ms": _median_ms(with_plugin),
        "start_without_ms": _median_ms(without),
        "added_ms": _median_ms(with_plugin) - _median_ms(without),
        # the fastest run of each is the least disturbed by other load on the machine
        "added_min_ms": (min(with_plugin) - min(without)) * 1000,
        "import_ms": _median_ms(imports),
    }


def main() -> None:
    """Run every benchmark and print the Markdown rows."""
    controller = bench_controller()
    through = bench_through_pytest()
    load = bench_load()
    print("| measure | result | target |")
    print("|---|---|---|")
    cycle, api = controller["cycle_ms"], controller["api_call_ms"]
    print(
        f"| controller cycle (proxy + inject + heal + teardown), median | {cycle:.2f} ms "
        f"(fastest {controller['cycle_min_ms']:.2f} ms; {cycle / api:.1f}x one API call of "
        f"{api:.2f} ms) | <= 5 ms |"
    )
    print(
        f"| through pytest: chaos test minus plain test, per test | "
        f"{through['per_test_ms']:.2f} ms (300 tests: {through['chaos_s']:.2f} s vs "
        f"{through['plain_s']:.2f} s) | - |"
    )
    print(
        f"| pytest start added by the plugin (median of 15; fastest runs) | "
        f"{load['added_ms']:.1f} ms; {load['added_min_ms']:.1f} ms ({load['start_with_ms']:.0f} "
        f"vs {load['start_without_ms']:.0f} ms with -p no:chaos) | <= 50 ms |"
    )
    print(f"| import of plugin.py and its sub-plugins | {load['import_ms']:.1f} ms | - |")


if __name__ == "__main__":
    main()
