"""The conformance suite runs against a server it did not start (CHAOS_CONFORMANCE_URL)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_conformance_suite_passes_against_a_cli_server_url() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "pytest_chaos.proxy", "-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip().rsplit(" ", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env["CHAOS_CONFORMANCE_URL"] = url
        env.pop("CHAOS_CONFORMANCE_SERVER_WIDE", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/conformance",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                "-rs",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        # Nothing may be left on the shared server by the suite.
        import json
        import urllib.request

        with urllib.request.urlopen(f"{url}/proxies", timeout=10) as resp:
            leftovers = json.load(resp)
    finally:
        server.terminate()
        server.communicate(timeout=30)  # also closes the stdout pipe
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    skipped = int(re.search(r"(\d+) skipped", summary).group(1))  # type: ignore[union-attr]
    assert passed > 50
    # POST /reset tests stay away from a shared server unless allowed.
    assert skipped == 3 and "CHAOS_CONFORMANCE_SERVER_WIDE=1" in result.stdout
    assert server.returncode == 0
    assert leftovers == {}
