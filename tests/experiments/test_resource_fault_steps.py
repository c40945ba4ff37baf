"""Resource faults as fault strings, live: a YAML experiment's step and exploration's
cells take Redis's memory and client slots through the proxy in front of it, the
server answers with its own errors, and the fault counts on the proxy's name.

Redis comes from ``chaos_services`` (Docker, local binaries or the bundled wheel:
whichever the machine has); the resource faults themselves are covered per provider in
tests/services/test_resource_faults.py.
"""

from __future__ import annotations

import json

import pytest

CONFTEST = r"""
import pytest
import redis


@pytest.fixture
def cache(chaos, chaos_services):
    # the proxy is named "cache", the service "redis": the blast radius names the proxy
    proxy = chaos.proxy("cache", upstream=chaos_services.redis())
    client = redis.Redis(host=proxy.host, port=proxy.port, socket_timeout=2)
    yield proxy, client
    client.close()
"""

PROBES = r"""
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def write(cache):
    proxy, client = cache
    client.set("price:1", "9.99")
    return True


def fresh_write(cache):
    # a new client, a new connection: refused while every client slot is held
    proxy, _ = cache
    client = redis.Redis(host=proxy.host, port=proxy.port, socket_timeout=2,
                         retry=Retry(NoBackoff(), 0))  # one try: the error, not a wait
    try:
        return client.set("price:1", "9.99")
    finally:
        client.close()
"""

EXPERIMENT = """\
apiVersion: pytest-chaos/v1
kind: Experiment
metadata:
  name: cache-out-of-memory
spec:
  hypothesis: writes fail while Redis is out of memory, and work again after the heal
  blast_radius:
    targets: [cache]
  uses: [cache]
  targets:
    cache: {proxy: "{cache[0]}"}
  probes:
    write: {call: "probes:write"}
  steady_state:
    - {probe: write, calls: 3}
  method:
    - at: 0s
      name: Redis out of memory
      fault: memory_limit:4MiB fill=true
      target: cache
      for: 500ms
      expect: {probe: write, max_error_rate: %s}
  success_criteria:
    - recovers: {probe: write, within: 2s}
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(probes=PROBES)
    return pytester


def test_a_yaml_step_fills_redis_through_its_proxy(suite: pytest.Pytester) -> None:
    """The step's fault string reaches chaos.memory_limit on the server behind the
    proxy: writes fail during the step (so an objective of 0% errors fails, naming the
    out-of-memory error), and work again after the heal."""
    suite.path.joinpath("chaos_oom.yaml").write_text(EXPERIMENT % "0%")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "chaos_oom.yaml")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "command not allowed when used memory" in text, text
    result.stdout.fnmatch_lines(
        ["*fault  memory_limit on cache  proxy=cache service=redis *fill=True*healed*"]
    )


def test_a_yaml_step_whose_objective_allows_the_errors_passes_and_heals(
    suite: pytest.Pytester,
) -> None:
    suite.path.joinpath("chaos_oom.yaml").write_text(EXPERIMENT % "100%")
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "chaos_oom.yaml")
    result.assert_outcomes(passed=1)  # recovers: writes work within 2 s of the heal


def test_a_bad_resource_fault_string_is_a_collection_error_with_the_fix(
    suite: pytest.Pytester,
) -> None:
    suite.path.joinpath("chaos_oom.yaml").write_text(
        (EXPERIMENT % "100%").replace("memory_limit:4MiB fill=true", "memory_limit:4MB")
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "chaos_oom.yaml")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'4MB' is not a size; write whole mebibytes*64MiB*"])


SCENARIO = r"""
import pytest
import redis
from probes import fresh_write


@pytest.mark.chaos_explore(
    targets={"cache": "service"},
    faults={"cache": ["latency:10ms", "memory_limit:4MiB fill=true",
                      "exhaust_connections max_clients=10"]},
)
@pytest.mark.chaos(blast_radius=["cache"])
def test_writes(chaos, cache):
    # Hypothesis (too strong, on purpose): a write always succeeds
    try:
        written = fresh_write(cache)
    except redis.RedisError as exc:
        written = f"{type(exc).__name__}: {exc}"
    assert written is True, f"the write failed: {written}"
"""


def test_exploration_cells_take_memory_and_client_slots(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_cache=SCENARIO)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--chaos-journal", "journal")
    result.assert_outcomes(passed=2, failed=2)
    index = json.loads((suite.path / "journal" / "index.json").read_text())
    (matrix,) = index["explore"]
    cells = {c["cell"]: c for c in matrix["cells"]}
    assert {c: cells[c]["status"] for c in cells} == {
        "baseline": "pass",
        "cache-latency-10ms": "pass",
        "cache-memory_limit-4MiB-fill-true": "fail",
        "cache-exhaust_connections-max_clients-10": "fail",
    }
    assert (
        "command not allowed when used memory"
        in cells["cache-memory_limit-4MiB-fill-true"]["message"]
    )
    message = cells["cache-exhaust_connections-max_clients-10"]["message"]
    assert "max number of clients reached" in message, message
    # healed: the server's settings are back (a later cell would fail otherwise, and
    # the summary says each fault was healed)
    result.stdout.fnmatch_lines(["*fault  exhaust_connections on cache *max_clients=10*healed*"])
