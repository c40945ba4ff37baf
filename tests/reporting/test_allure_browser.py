"""The Allure report of a chaos run, generated and opened in a real headless browser.

The Allure command line (npm ``allure-commandline``, on Java) builds the HTML report
from the results of the small chaos suite (passed, failed, aborted, error); Chromium,
driven by ``playwright-core``, opens the failing test's page, expands the chaos
attachments and reports what it rendered: the decoded timeline chart and the check
table inside Allure's attachment frame.

Tools come from ``.ci/reports.sh`` (``$PYTEST_CHAOS_REPORT_TOOLS``, default
``/opt/pytest-chaos-reports``). In CI (``CI=true``) a missing tool fails the test;
locally it skips and says how to install them. Set ``PYTEST_CHAOS_SCREENSHOT=PATH`` to
keep the screenshot (docs/allure-failing-test.png was made that way).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SuiteRun

TOOLS = Path(os.environ.get("PYTEST_CHAOS_REPORT_TOOLS", "/opt/pytest-chaos-reports"))
SCRIPT = Path(__file__).with_name("allure_page.cjs")


def _tools() -> dict[str, str]:
    found = {
        "allure": TOOLS / "node_modules" / ".bin" / "allure",
        "playwright-core": TOOLS / "node_modules" / "playwright-core",
        "node": shutil.which("node"),
        "java": shutil.which("java"),
        "chromium": shutil.which("chromium") or shutil.which("chromium-browser"),
    }
    missing = [name for name, path in found.items() if not path or not Path(path).exists()]
    if missing:
        message = (
            f"report tools missing: {', '.join(missing)} (looked in {TOOLS} and PATH); "
            "install them as root with: bash -c 'set -e; source .ci/reports.sh'"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    return {name: str(path) for name, path in found.items()}


@pytest.fixture(scope="session")
def report_tools() -> dict[str, str]:
    """The tools' paths; checked before the chaos suite runs, so a skip costs nothing."""
    return _tools()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on loopback (Allure's page loads its data by fetch)."""
    root = tmp_path / "report"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_failing_test_page_renders_the_timeline_chart_and_the_check_table(
    report_tools: dict[str, str], suite_run: SuiteRun, served: tuple[Path, str], tmp_path: Path
) -> None:
    tools = report_tools
    report, url = served
    generate = subprocess.run(
        [tools["allure"], "generate", str(suite_run.alluredir), "-o", str(report), "--clean"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr

    cases = [json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json")]
    by_name = {case["name"]: case for case in cases}
    assert {by_name[n]["status"] for n in ("test_guard_aborts", "test_outside_radius")} == {
        "broken"
    }
    failing = by_name["test_too_slow"]
    assert failing["status"] == "failed"
    # Allure itself (Java regexes, full match) sorted the tests into our categories
    tree = json.loads((report / "data" / "categories.json").read_text())
    sorted_into = {
        category["name"]: sorted(
            test["name"] for group in category["children"] for test in group["children"]
        )
        for category in tree["children"]
    }
    assert sorted_into == {
        "Hypothesis violated": ["test_too_slow"],
        "Aborted by guard": ["test_guard_aborts"],
        "Injection broken": ["test_outside_radius"],
    }

    screenshot = tmp_path / "allure-failing-test.png"
    browser = subprocess.run(
        [
            tools["node"],
            str(SCRIPT),
            f"{url}#testresult/{failing['uid']}",
            str(screenshot),
            str(tmp_path / "chromium-profile"),
        ],
        env={
            **os.environ,
            "PLAYWRIGHT_CORE": tools["playwright-core"],
            "CHROMIUM": tools["chromium"],
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert browser.returncode == 0, browser.stdout + browser.stderr
    seen = json.loads(browser.stdout)

    assert seen["status"] == "Failed"
    assert seen["category"], "the page does not put the test under 'Hypothesis violated'"
    chart = seen["chart"]
    # the browser decoded our SVG (960 px wide) and painted it: lanes, window, dots, axis
    assert chart["naturalWidth"] == 960 and chart["shownHeight"] > 100
    assert chart["inkedPixels"] > 20_000
    assert chart["redPixels"] > 500  # the failed check's red bar
    table = seen["table"]
    assert seen["frame"]["height"] > 50 and table["height"] > 20
    (row,) = table["rows"]
    assert row[:3] == ["steady_state", "echo", "FAIL"]
    assert "p99" in row[3] and "p99 = 0.01" in row[4]
    assert table["verdictColor"] == "rgb(207, 34, 46)"  # the stylesheet applied: red FAIL
    assert screenshot.stat().st_size > 10_000

    keep = os.environ.get("PYTEST_CHAOS_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)
