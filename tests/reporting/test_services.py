"""The chaos summary and journal never let a run that tested nothing read like a pass:
skipped chaos tests are listed with their reasons and counted by reason, and the
services the run started are named with where they ran and their version."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import pytest_chaos.reporting
from pytest_chaos.reporting._services import ServiceLog, describe, services_line

pytest.importorskip("jsonschema")
import jsonschema

SKIPPING = """
import pytest
import pytest_chaos


@pytest.fixture
def postgres():
    pytest_chaos.unavailable("no postgres")


@pytest.mark.chaos(blast_radius=["db"])
@pytest.mark.parametrize("i", range(3))
def test_needs_postgres(postgres, i):
    pass


@pytest.mark.chaos(blast_radius=["db"])
@pytest.mark.skipif(True, reason="needs HTTP toxics")
def test_http():
    pass


@pytest.mark.chaos(blast_radius=["db"])
def test_runs(chaos):
    pass
"""

# a stand-in for a bundled Redis: there is no redis-server on every machine that runs this
FAKE_SERVICE_CONFTEST = """
import pytest

from pytest_chaos.services._service import Service


class FakeRuntime:
    provider = "bundled"
    pid = None

    def state(self):
        return "running"

    def remove(self):
        pass

    def describe(self):
        return "fake"


@pytest.fixture(scope="session")
def redis(chaos_services):
    service = Service(
        name="redis",
        kind="redis",
        host="127.0.0.1",
        port=6379,
        url="redis://127.0.0.1:6379/0",
        runtime=FakeRuntime(),
    )
    service.version = "6.2.14"
    chaos_services._services[service.name] = service
    return service
"""

USES_SERVICE = """
import pytest


@pytest.mark.chaos(blast_radius=["redis"])
@pytest.mark.parametrize("i", range(4))
def test_with_redis(chaos, redis, i):
    assert redis.address == "127.0.0.1:6379"
"""


def _validate(document: dict[str, object]) -> None:
    jsonschema.Draft202012Validator(pytest_chaos.reporting.journal_schema()).validate(document)


def test_skipped_chaos_tests_are_listed_and_counted_by_reason(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "no:cacheprovider", "--chaos-journal", "journal")
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*::test_needs_postgres?0?  SKIPPED  *",
            "  skipped at setup: no postgres",
            "*::test_http  SKIPPED  *",
            "  skipped at setup: needs HTTP toxics",
            "chaos: 5 tests (1 passed, 4 skipped: no postgres (3), needs HTTP toxics (1)); *",
        ]
    )

    journal = pytester.path / "journal"
    index = json.loads((journal / "index.json").read_text())
    _validate(index)
    reasons = {entry["nodeid"].split("::")[1]: entry["skip_reason"] for entry in index["tests"]}
    assert reasons["test_http"] == "needs HTTP toxics"
    assert reasons["test_needs_postgres[0]"] == "no postgres"
    assert reasons["test_runs"] is None
    for path in (journal / "tests").glob("*.json"):
        document = json.loads(path.read_text())
        _validate(document)
        if document["outcome"] == "skipped":
            assert document["skip"]["phase"] == "setup"
            assert document["skip"]["reason"] in ("no postgres", "needs HTTP toxics")
        else:
            assert document["skip"] is None


def test_a_run_that_only_skipped_says_so_in_its_totals(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q", "-q", "-k", "postgres")
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(["chaos: 3 tests (3 skipped: no postgres); 0 faults*"])


def test_under_strict_the_journal_records_an_unavailable_experiment_as_an_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--chaos-strict", "--chaos-journal", "journal", "-k", "0"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    index = json.loads((pytester.path / "journal" / "index.json").read_text())
    _validate(index)
    assert index["totals"]["error"] == 1 and index["totals"]["skipped"] == 0
    (entry,) = index["tests"]
    document = json.loads((pytester.path / "journal" / entry["file"]).read_text())
    _validate(document)
    assert document["outcome"] == "error"
    assert document["failure"]["phase"] == "setup"
    assert document["failure"]["kind"] == "unavailable"
    assert document["failure"]["message"] == "no postgres"


@pytest.mark.parametrize("xdist", [False, True], ids=["one-process", "xdist"])
def test_the_summary_and_journal_name_the_services_that_ran(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    pytester.makeconftest(FAKE_SERVICE_CONFTEST)
    pytester.makepyfile(USES_SERVICE)
    args = ["-p", "no:cacheprovider", "--chaos-journal", "journal"]
    if xdist:
        # each worker starts its own redis: the controller shows it once
        result = pytester.runpytest_subprocess(*args, "-p", "xdist", "-n", "2")
    else:
        result = pytester.runpytest(*args)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["chaos: 4 tests (4 passed); *", "services: redis 6.2.14 (bundled)"]
    )
    index = json.loads((pytester.path / "journal" / "index.json").read_text())
    _validate(index)
    assert index["services"] == [
        {"name": "redis", "kind": "redis", "provider": "bundled", "version": "6.2.14"}
    ]
    if xdist:
        assert index["workers"] == ["gw0", "gw1"]


def test_a_run_without_services_has_no_services_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "no:cacheprovider", "--chaos-journal", "journal")
    assert not [line for line in result.stdout.lines if line.startswith("services:")]
    index = json.loads((pytester.path / "journal" / "index.json").read_text())
    assert index["services"] == []


def test_services_line_deduplicates_and_names_what_differs() -> None:
    def service(name: str, kind: str, provider: str, version: str | None) -> SimpleNamespace:
        return SimpleNamespace(name=name, kind=kind, provider=provider, version=version)

    log = ServiceLog()
    for _worker in range(2):  # every xdist worker reports the same two services
        log.add(describe(service("redis", "redis", "bundled", "6.2.14")))
        log.add(describe(service("postgres", "postgres", "local", "15.8")))
    log.add(describe(service("cache", "redis", "docker", None)))
    log.extend(["not a mapping"])  # type: ignore[list-item]
    assert len(log) == 3
    assert services_line(log.entries) == (
        "services: redis 6.2.14 (bundled), postgres 15.8 (local), cache=redis (docker)"
    )
    assert services_line([]) is None
    # a Service from before versions were known still describes itself
    legacy = SimpleNamespace(name="web", kind="container", provider="docker")
    assert describe(legacy) == {
        "name": "web",
        "kind": "container",
        "provider": "docker",
        "version": None,
    }


def test_the_journal_schema_accepts_files_without_the_new_fields() -> None:
    # readers validate journals written before skips and services were recorded
    schema = pytest_chaos.reporting.journal_schema()
    assert "services" not in schema["$defs"]["index"]["required"]
    assert "skip" not in schema["$defs"]["test"]["required"]
