"""Fixtures of the report tests: one real chaos run, shared by the tests that read it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ._support import run_pytest, write_suite


@dataclass(frozen=True)
class SuiteRun:
    """The outputs of one run of the small chaos suite under ``-n 2``."""

    directory: Path
    journal: Path
    alluredir: Path
    process: subprocess.CompletedProcess[str]

    @property
    def stdout(self) -> str:
        return self.process.stdout


@pytest.fixture(scope="session")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    """The chaos suite run once per test process with ``-n 2``, journal and Allure on."""
    directory = tmp_path_factory.mktemp("suite")
    write_suite(directory)
    process = run_pytest(
        directory, "-n", "2", "--chaos-journal", "journal", "--alluredir", "allure-results"
    )
    # 3 tests fail on purpose (failed, aborted, error); anything else is a broken run
    assert process.returncode == 1, process.stdout[-3000:] + process.stderr[-3000:]
    yield SuiteRun(directory, directory / "journal", directory / "allure-results", process)
