"""The check results (and fault windows) of one test as a small HTML page.

Used as an Allure attachment: a standalone document with inline style and no script,
so it renders the same in the Allure viewer's frame and in a plain browser.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pytest_chaos.reporting._model import ChaosTestResult
from pytest_chaos.reporting._terminal import format_number

__all__ = ["checks_html"]

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 8px; color: #222; }
table { border-collapse: collapse; margin-bottom: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
tr.pass td.verdict { color: #1a7f37; font-weight: bold; }
tr.fail td.verdict { color: #cf222e; font-weight: bold; }
tr.fail { background: #fff5f5; }
h3 { font-size: 14px; margin: 10px 0 6px; }
.abort { color: #b35900; font-weight: bold; }
"""


def _numbers(values: Mapping[str, Any]) -> str:
    if not values:
        return "&ndash;"
    return "<br>".join(
        f"{escape(str(k))} = {escape(format_number(v))}"
        for k, v in values.items()
        if k != "histogram"  # a compare check's histogram is drawn, not listed
    )


def checks_html(result: ChaosTestResult) -> str:
    """A standalone HTML page: the checks table, the faults table, the aborts."""
    rows = []
    for check in result.checks:
        verdict = "PASS" if check.passed else "FAIL"
        rows.append(
            f'<tr class="chaos-check {"pass" if check.passed else "fail"}">'
            f"<td>{escape(check.name)}</td><td>{escape(check.target) or '&ndash;'}</td>"
            f'<td class="verdict">{verdict}</td>'
            f"<td>{_numbers(check.measured)}</td><td>{_numbers(check.allowed)}</td>"
            f"<td>{check.duration:.3f} s</td><td>{escape(check.message)}</td></tr>"
        )
    if not rows:
        rows.append('<tr><td colspan="7">no checks ran</td></tr>')
    faults = []
    for fault in result.faults:
        attrs = ", ".join(f"{k}={format_number(v)}" for k, v in fault.attributes.items())
        duration = "never healed" if fault.duration is None else f"{fault.duration:.3f} s"
        faults.append(
            f'<tr class="chaos-fault"><td>{escape(fault.fault_id)}</td>'
            f"<td>{escape(fault.kind)}</td><td>{escape(fault.target)}</td>"
            f"<td>{escape(attrs) or '&ndash;'}</td><td>{escape(fault.stream or '')}</td>"
            f"<td>{fault.start:.3f} s</td><td>{duration}</td>"
            f"<td>{escape(fault.healed_by or '')}</td></tr>"
        )
    if not faults:
        faults.append('<tr><td colspan="8">no faults injected</td></tr>')
    aborts = "".join(
        f'<p class="abort">Aborted by {escape(a.source)} at {a.t:.3f} s: {escape(a.reason)}'
        f"{' (healed ' + escape(', '.join(a.healed)) + ')' if a.healed else ''}</p>"
        for a in result.aborts
    )
    seed = result.seed if result.seed is not None else "?"
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>chaos checks: {escape(result.nodeid)}</title><style>{_STYLE}</style></head>"
        f"<body><h3>Checks of {escape(result.nodeid)} &mdash; {escape(result.outcome)}, "
        f"seed {seed}</h3>{aborts}"
        '<table id="chaos-checks"><thead><tr><th>check</th><th>target</th><th>verdict</th>'
        "<th>measured</th><th>allowed</th><th>duration</th><th>message</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        '<h3>Faults</h3><table id="chaos-faults"><thead><tr><th>id</th><th>type</th>'
        "<th>target</th><th>attributes</th><th>stream</th><th>injected at</th>"
        "<th>active for</th><th>healed by</th></tr></thead>"
        f"<tbody>{''.join(faults)}</tbody></table></body></html>\n"
    )
