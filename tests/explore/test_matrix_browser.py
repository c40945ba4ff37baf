"""The resilience matrix in a real Allure report, opened in headless Chromium: the
"resilience matrix" result is there, failed, and its SVG heatmap is decoded and painted
with green (pass) and red (fail) cells. Tools as in tests/reporting/test_allure_browser.py
(a missing tool skips locally and fails in CI)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.reporting.test_allure_browser import report_tools, served  # noqa: F401

from .test_explore import CONFTEST, MARKER, SCENARIO

SCRIPT = Path(__file__).with_name("allure_matrix.cjs")


def test_the_allure_report_shows_the_matrix_heatmap(
    report_tools: dict[str, str],  # noqa: F811
    served: tuple[Path, str],  # noqa: F811
    pytester: pytest.Pytester,
    tmp_path: Path,
) -> None:
    pytest.importorskip("allure_pytest")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_explore=SCENARIO.replace("{marker}", MARKER))
    alluredir = tmp_path / "allure-results"
    pytester.runpytest("-p", "no:cacheprovider", f"--alluredir={alluredir}")
    report, url = served
    generate = subprocess.run(
        [report_tools["allure"], "generate", str(alluredir), "-o", str(report), "--clean"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    cases = [json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json")]
    (matrix,) = [c for c in cases if c["name"] == "resilience matrix: test_explore.py::test_call"]
    assert matrix["status"] == "failed"

    screenshot = tmp_path / "allure-matrix.png"
    browser = subprocess.run(
        [
            report_tools["node"],
            str(SCRIPT),
            f"{url}#testresult/{matrix['uid']}",
            str(screenshot),
            str(tmp_path / "chromium-profile"),
        ],
        env={
            **os.environ,
            "PLAYWRIGHT_CORE": report_tools["playwright-core"],
            "CHROMIUM": report_tools["chromium"],
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert browser.returncode == 0, browser.stdout + browser.stderr
    seen = json.loads(browser.stdout)
    assert seen["status"] == "Failed"
    heatmap = seen["heatmap"]
    assert heatmap["naturalWidth"] > 300 and heatmap["shownHeight"] > 100
    # 3 passing cells (baseline included) and 3 failing ones, ~100x30 px each
    assert heatmap["greenPixels"] > 3 * 2000
    assert heatmap["redPixels"] > 3 * 2000
    keep = os.environ.get("PYTEST_CHAOS_SCREENSHOT_MATRIX")
    if keep:
        Path(keep).write_bytes(screenshot.read_bytes())
