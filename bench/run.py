#!/usr/bin/env python
"""Run every benchmark of bench/ in turn and print their tables.

Each script measures its workloads against a baseline in the same run and prints a
Markdown table; copy the tables into bench/RESULTS.md with the date, the machine and its
load. Run on a quiet machine: ``make bench`` or ``.venv/bin/python bench/run.py``.
Pass ``--quick`` to forward it to the scripts that take it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_proxy.py",
    "bench_embedded_mode.py",
    "bench_plugin.py",
    "bench_http.py",
    "bench_services.py",
    "bench_resources.py",
    "bench_compare.py",
]


def main() -> int:
    """Run the scripts one after the other; the exit status is the first failure's."""
    quick = "--quick" in sys.argv[1:]
    status = 0
    for name in SCRIPTS:
        args = [sys.executable, str(HERE / name)]
        if quick and "--quick" in (HERE / name).read_text():
            args.append("--quick")
        print(f"\n### {name}\n", flush=True)
        code = subprocess.call(args, cwd=HERE.parent)
        if code and not status:
            status = code
    return status


if __name__ == "__main__":
    sys.exit(main())
