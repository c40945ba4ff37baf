"""The pytest collector of YAML experiments: ``chaos_*.yaml`` files become test items.

A sub-plugin named in ``pytest_chaos.plugin.pytest_plugins``: at import it needs only
pytest; the loader (and yaml) load when a matching file is collected. Every YAML
document is one :class:`ExperimentItem`, a ``pytest.Function`` whose synthetic function
asks for ``chaos``, ``request`` and the ``uses:`` fixtures, so the item runs inside the
normal fixture machinery (xdist, ``-k``, ``-m chaos``, the reports). It carries
``@pytest.mark.chaos(blast_radius=...)`` from the document, and its file and line.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_chaos.experiments._loader import Document

__all__ = ["ExperimentFile", "ExperimentItem", "pytest_collect_file"]

DEFAULT_GLOBS = ("chaos_*.yaml", "chaos_*.yml")


def _globs(config: pytest.Config) -> list[str]:
    option = config.getoption("chaos_experiment_files", None)
    if option:
        return str(option).split()
    return list(config.getini("chaos_experiment_files") or DEFAULT_GLOBS)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect YAML experiment files (``chaos_experiment_files`` globs)."""
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    if any(fnmatch.fnmatch(file_path.name, glob) for glob in _globs(parent.config)):
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


class ExperimentFile(pytest.File):
    """A YAML experiment file: one item per document."""

    def collect(self) -> Iterable[pytest.Item]:
        """Load and check the file; a mistake is a collection error naming file:line."""
        from pytest_chaos.experiment import BlastRadius
        from pytest_chaos.experiments._loader import ExperimentError, load_file
        from pytest_chaos.experiments._units import parse_duration

        try:
            documents = load_file(self.path)
        except ExperimentError as exc:
            raise self.CollectError(self._relative(str(exc))) from None
        items = []
        for doc in documents:
            doc.shown = self._relative(str(self.path))
            radius = doc.spec["blast_radius"]
            blast = BlastRadius(
                targets=list(radius["targets"]),
                exclude=list(radius.get("exclude", [])),
                max_concurrent_faults=radius.get("max_concurrent_faults"),
                max_fault_seconds=(
                    parse_duration(radius["max_fault_seconds"])
                    if "max_fault_seconds" in radius
                    else None
                ),
            )
            uses = list(doc.spec.get("uses") or [])
            item = ExperimentItem.from_parent(
                self, name=doc.name, callobj=_function(doc, uses), document=doc
            )
            item.add_marker(pytest.mark.chaos(blast_radius=blast))
            known = item._fixtureinfo.name2fixturedefs
            for i, name in enumerate(uses):
                if name not in known:
                    where = doc.where(("spec", "uses", i))
                    raise self.CollectError(
                        self._relative(
                            f"{where}: spec.uses[{i}]: no fixture named {name!r} is visible "
                            f"from {self.path.name}; define it in a conftest.py next to the "
                            "file (or a plugin), or remove it from uses."
                        )
                    )
            items.append(item)
        return items

    def _relative(self, message: str) -> str:
        # file:line relative to the rootdir, as pytest writes node ids
        root = str(self.config.rootpath) + "/"
        return message.replace(root, "")


def _function(doc: Document, uses: list[str]) -> Any:
    names = ["request", "chaos", *[u for u in uses if u not in ("request", "chaos")]]

    def experiment(**fixtures: Any) -> None:
        from pytest_chaos.experiments._runner import run_document

        run_document(doc, fixtures["chaos"], fixtures)

    experiment.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names]
    )
    experiment.__name__ = doc.name
    experiment.__doc__ = doc.spec.get("hypothesis")
    return experiment


class ExperimentItem(pytest.Function):
    """One YAML document, run as a test (``kind: Experiment`` or ``GameDay``)."""

    def __init__(self, *, document: Document, **kwargs: Any) -> None:
        self.document = document
        super().__init__(**kwargs)

    @property
    def source(self) -> str:
        """``file:line`` of the document, relative to the rootdir."""
        return self.document.where(())

    def reportinfo(self) -> tuple[Path, int, str]:
        """The YAML file and the document's line."""
        return self.document.path, self.document.line - 1, f"{self.document.kind} {self.name}"

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """A violated hypothesis reads as the check's message, under the document."""
        if isinstance(excinfo.value, AssertionError):
            hypothesis = self.document.spec.get("hypothesis")
            head = f"{self.source}: {self.document.kind} {self.name!r}"
            text = f"{head}\nhypothesis: {hypothesis.strip()}" if hypothesis else head
            return f"{text}\n{excinfo.typename}: {excinfo.value}"
        return super().repr_failure(excinfo)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Put the YAML item's ``file:line`` and hypothesis in its ``chaos_record``."""
    report = yield
    record = getattr(report, "chaos_record", None)
    if isinstance(item, ExperimentItem) and isinstance(record, dict):
        record["source"] = item.source
        record["hypothesis"] = item.document.spec.get("hypothesis")
    return report
