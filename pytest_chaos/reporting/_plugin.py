"""Sub-plugin: terminal summary, ``--chaos-journal`` and Allure output.

Every report is fed from the per-test ``chaos_record`` that the core plugin attaches to
the teardown report of a chaos test (docs/internals.md). Where each output is made:

- the terminal summary and the journal in the process that sees every report: the
  xdist controller, or the only process without xdist (records travel to the
  controller as report attributes, so nothing is merged from files);
- the Allure additions in the process that ran the test, because allure-pytest writes
  its result files there;
- the services line (which services ran where) from notes taken in the processes that
  run tests, handed to the controller through ``workeroutput`` (``_services.py``).

Module-level imports stay light: this module loads on every pytest run.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_chaos.reporting._model import ChaosTestResult, PhaseInfo, classify_exception
from pytest_chaos.reporting._services import WORKEROUTPUT_KEY, ServiceLog, services_line

if TYPE_CHECKING:
    from pytest_chaos.reporting._journal import JournalWriter

_PLUGIN_NAME = "chaos-reporting"
_MESSAGE_LIMIT = 4000


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register ``--chaos-journal DIR`` and the ``chaos_journal`` ini key."""
    group = parser.getgroup("chaos", "chaos engineering (pytest-chaos)")
    group.addoption(
        "--chaos-journal",
        metavar="DIR",
        default=None,
        help="write a JSON journal of the chaos tests to DIR (index.json + tests/*.json)",
    )
    parser.addini(
        "chaos_journal",
        "directory for the JSON journal of chaos tests (relative to the ini file)",
        default="",
    )


def _journal_dir(config: pytest.Config) -> Path | None:
    option = config.getoption("chaos_journal", None)
    if option:
        return config.invocation_params.dir / str(option)
    ini = str(config.getini("chaos_journal") or "").strip()
    if ini:
        base = config.inipath.parent if config.inipath else config.rootpath
        return base / ini
    return None


def _is_chaos_item(item: pytest.Item) -> bool:
    return item.get_closest_marker("chaos") is not None or "chaos" in getattr(
        item, "fixturenames", ()
    )


def _skip_reason(report: pytest.TestReport) -> str | None:
    """The reason of a skipped phase as the user wrote it (pytest.skip, skipif, xfail)."""
    if not report.skipped:
        return None
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail}" if report.wasxfail else "xfail"
    longrepr = report.longrepr
    # (path, line, "Skipped: reason"); a list once it has crossed from an xdist worker
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        text = str(longrepr[2])
    else:
        text = str(longrepr or "")
    # pytest shows the exception class of a skip: "Skipped: " for pytest.skip, the full
    # name for pytest_chaos.unavailable; the reason is what follows
    for prefix in ("Skipped: ", "pytest_chaos.errors.ChaosUnavailable: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _exception_info(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    message = str(exc)
    if len(message) > _MESSAGE_LIMIT:
        message = message[:_MESSAGE_LIMIT] + " ..."
    return {"type": name, "message": message, "kind": classify_exception(exc)}


class ChaosReporting:
    """Collects the phase reports and records of chaos tests and writes the reports."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.results: list[ChaosTestResult] = []
        #: services started in this run (merged from every worker in the controller)
        self.services = ServiceLog()
        self.journal: JournalWriter | None = None
        self._phases: dict[str, dict[str, PhaseInfo]] = {}
        self._items: dict[str, pytest.Item] = {}
        self._is_worker = hasattr(config, "workerinput")
        # --collect-only runs no test: it must not replace the last run's journal
        if not self._is_worker and not config.option.collectonly:
            directory = _journal_dir(config)
            if directory is not None:
                from pytest_chaos.reporting._journal import JournalWriter

                self.journal = JournalWriter(directory)
                self.journal.prepare()

    @property
    def sees_every_report(self) -> bool:
        """True in the xdist controller or a run without xdist."""
        return not self._is_worker

    @property
    def runs_tests(self) -> bool:
        """True in an xdist worker or a run without xdist (not in the controller)."""
        return not self.config.pluginmanager.hasplugin("dsession")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> None:
        """Remember the item: allure-pytest finds its open result through it."""
        self._items[item.nodeid] = item

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """Note on a failing report of a chaos test what kind of exception failed it."""
        report = yield
        if call.excinfo is not None and report.failed and _is_chaos_item(item):
            # the exception class decides failed vs error; only its summary crosses xdist
            report.chaos_exception = _exception_info(call.excinfo.value)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport | pytest.CollectReport
    ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
        """A chaos test's call that raised something other than an assertion (a check
        that could not judge, a fault that could not be injected) is an ERROR, as the
        chaos summary, the journal and Allure ("broken") call it, not FAILED."""
        if getattr(report, "when", None) != "call" or not report.failed:
            return None
        info = getattr(report, "chaos_exception", None)
        if not isinstance(info, dict) or info.get("kind") in (None, "hypothesis", "assertion"):
            return None
        return "error", "E", ("ERROR", {"red": True})

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        """Note the running services before fixtures end: the last test's teardown
        removes them, before any session-end hook could ask."""
        self.services.note_running(item.config)
        return (yield)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: merge the services a finished worker noted."""
        output = getattr(node, "workeroutput", None) or {}
        self.services.extend(output.get(WORKEROUTPUT_KEY) or ())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect the phases; at teardown, hand the test's result to every output."""
        phase = PhaseInfo(
            outcome=report.outcome,
            duration=float(report.duration),
            exception=getattr(report, "chaos_exception", None),
            wasxfail=hasattr(report, "wasxfail"),
            skip_reason=_skip_reason(report),
        )
        self._phases.setdefault(report.nodeid, {})[report.when] = phase
        if report.when != "teardown":
            return
        phases = self._phases.pop(report.nodeid, {})
        item = self._items.pop(report.nodeid, None)
        record = getattr(report, "chaos_record", None)
        if not isinstance(record, dict):
            return
        result = ChaosTestResult.build(record, phases)
        if not result.nodeid:
            result.nodeid = report.nodeid
        if self.runs_tests and self.config.pluginmanager.hasplugin("allure_listener"):
            from pytest_chaos.reporting._allure import decorate_result

            decorate_result(self.config, item, result)
        if self.sees_every_report:
            self.results.append(result)
            if self.journal is not None:
                self.journal.add(result)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Print the chaos summary (only where every report arrives)."""
        if not self.sees_every_report or not self.results:
            return
        from pytest_chaos.reporting._terminal import summary_lines

        verbose = self.config.get_verbosity() > -2
        terminalreporter.write_sep("=", "chaos summary")
        width = getattr(getattr(terminalreporter, "_tw", None), "fullwidth", None)
        lines = summary_lines(
            self.results, verbose=verbose, width=width if isinstance(width, int) else None
        )
        for text, markup in lines:
            terminalreporter.write_line(text, **markup)
        from pytest_chaos.reporting._matrix import build_matrices, matrix_lines

        for text, markup in matrix_lines(build_matrices(self.results)):
            terminalreporter.write_line(text, **markup)
        line = services_line(self.services.entries)
        if line is not None:
            terminalreporter.write_line(line)
        if self.journal is not None:
            terminalreporter.write_line(f"chaos journal: {self.journal.directory}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the journal index and Allure's run files (categories, environment)."""
        # runs before the terminal summary, which the terminal plugin prints after
        # every other pytest_sessionfinish implementation
        workeroutput: dict[str, Any] | None = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            # xdist sends workeroutput after every pytest_sessionfinish implementation
            workeroutput[WORKEROUTPUT_KEY] = self.services.entries
        if not self.sees_every_report:
            return
        if self.journal is not None:
            self.journal.finish(services=self.services.entries)
        alluredir = getattr(self.config.option, "allure_report_dir", None)
        if alluredir and self.results:
            from pytest_chaos.reporting._allure import write_run_files

            write_run_files(Path(alluredir).absolute(), self.results)
            from pytest_chaos.reporting._matrix import build_matrices, write_allure_matrices

            write_allure_matrices(Path(alluredir).absolute(), build_matrices(self.results))

    def __repr__(self) -> str:
        return (
            f"<ChaosReporting results={len(self.results)} "
            f"journal={self.journal!r} worker={self._is_worker}>"
        )


def pytest_configure(config: pytest.Config) -> None:
    """Register the per-run :class:`ChaosReporting` plugin object."""
    config.pluginmanager.register(ChaosReporting(config), _PLUGIN_NAME)
