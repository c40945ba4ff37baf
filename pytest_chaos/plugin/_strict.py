"""The strict gate (``--chaos-strict``, ini ``chaos_strict``, ``PYTEST_CHAOS_STRICT=1``).

A chaos suite used as a gate (a pull-request check, a nightly run) must never pass on
experiments that did not run. Without the gate a machine with no Docker, no server
binary or a plain Toxiproxy skips every experiment and the run is green. With it:

- a test skipped through :func:`pytest_chaos.unavailable` (:class:`ChaosUnavailable`:
  the plugin's services, a missing Docker engine, a conftest's own checks) is an error
  with the same reason plus a line saying what to do; a plain ``pytest.skip`` and the
  skip/skipif markers stay skips, since they are the user's decision;
- a run in which no chaos test ran fails (exit status 1, not pytest's 5 for "no tests"):
  a selection that matched none, or chaos tests that were all skipped or unavailable.

"A chaos test" is what the chaos summary counts: a test whose teardown report carries a
``chaos_record`` (the ``chaos`` marker or the ``chaos`` fixture). Those reports reach the
xdist controller, so the count there is the count of the whole run. The plugin object is
registered only when the gate is on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.errors import ChaosUnavailable

if TYPE_CHECKING:
    from pytest_chaos.reporting import ChaosTestResult

__all__ = ["STRICT_NOTE", "StrictGate", "gate_verdict"]

#: the line added to the reason of an experiment that could not run
STRICT_NOTE = (
    "--chaos-strict turned this skip into an error: the experiment could not run here. "
    "Provide what the line above names, or drop --chaos-strict (ini chaos_strict, "
    "PYTEST_CHAOS_STRICT) to let it skip."
)
# skipped phases are reported at the test's location, with pytest's "Skipped: " prefix
_SKIP_PREFIX = "Skipped: "
_REASON_LIMIT = 80


def _unavailable(result: ChaosTestResult) -> bool:
    return any(
        (phase.exception or {}).get("kind") == "unavailable" for phase in result.phases.values()
    )


def _clip(text: str) -> str:
    first = text.splitlines()[0] if text else "no reason given"
    return first if len(first) <= _REASON_LIMIT else first[: _REASON_LIMIT - 3] + "..."


def gate_verdict(results: list[ChaosTestResult]) -> str | None:
    """Why the gate fails a run with these chaos test results, or None if one ran.

    A test counts as run when it was neither skipped nor unavailable; a failed or
    aborted test ran (its own failure already fails the run).
    """
    if any(r.outcome != "skipped" and not _unavailable(r) for r in results):
        return None
    fix = (
        "A chaos gate must run at least one experiment: select chaos tests "
        "(@pytest.mark.chaos; e.g. -m chaos) and make what they need available, or drop "
        "--chaos-strict for a run that is not a chaos gate."
    )
    if not results:
        return (
            "--chaos-strict: no chaos test ran; the selection (paths, -m, -k) holds no "
            f"test marked @pytest.mark.chaos. {fix}"
        )
    skipped = [r for r in results if r.outcome == "skipped"]
    parts = []
    if skipped:
        reasons = Counter(_clip(r.skip["reason"] if r.skip else "") for r in skipped)
        grouped = ", ".join(f"{reason} ({n})" for reason, n in reasons.most_common())
        parts.append(f"{len(skipped)} skipped: {grouped}")
    missing = len(results) - len(skipped)
    if missing:
        parts.append(f"{missing} could not run for want of infrastructure (errors above)")
    return (
        f"--chaos-strict: no chaos test ran; of {len(results)} selected, "
        f"{' and '.join(parts)}. {fix}"
    )


class StrictGate:
    """The plugin object of the gate: reports and the exit status of a strict run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.verdict: str | None = None

    # trylast: the innermost wrapper, so the reporting wrappers outside it already see
    # the failure (the chaos summary and the journal say "error", not "skipped")
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Turn a skip raised through ``pytest_chaos.unavailable`` into an error."""
        report = yield
        excinfo = call.excinfo
        if excinfo is None or not report.skipped:
            return report
        if not isinstance(excinfo.value, ChaosUnavailable):
            return report
        reason = str(excinfo.value)
        # a fresh exception: a session fixture re-raises the same object for every test
        shown = ChaosUnavailable(f"{reason}\n{STRICT_NOTE}").with_traceback(excinfo.tb)
        report.outcome = "failed"
        # "value" style: the reason is the whole story, the plugin's frames are noise
        report.longrepr = pytest.ExceptionInfo.from_exception(shown).getrepr(style="value")
        report.chaos_unavailable = reason  # type: ignore[attr-defined]
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """An experiment that could not run is an ERROR in every phase, never FAILED."""
        if report.failed and getattr(report, "chaos_unavailable", None) is not None:
            return "error", "E", ("ERROR", {"red": True})
        return None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Fail the run (exit status 1) when no chaos test ran."""
        if hasattr(self.config, "workerinput") or self.config.option.collectonly:
            return  # the controller judges the whole run; --collect-only runs nothing
        # an interrupted run, an internal or a usage error keep their own status
        if session.exitstatus not in (
            pytest.ExitCode.OK,
            pytest.ExitCode.TESTS_FAILED,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            return
        reporting: Any = self.config.pluginmanager.get_plugin("chaos-reporting")
        self.verdict = gate_verdict(list(getattr(reporting, "results", [])))
        if self.verdict is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say why the gate failed the run, after the chaos summary."""
        if self.verdict is not None:
            terminalreporter.write_sep("=", "chaos strict gate", red=True, bold=True)
            terminalreporter.write_line(self.verdict, red=True, bold=True)

    def __repr__(self) -> str:
        return f"<StrictGate verdict={self.verdict!r}>"
