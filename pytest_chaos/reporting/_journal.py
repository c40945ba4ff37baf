"""The JSON journal of a chaos run (``--chaos-journal DIR``).

Layout::

    DIR/index.json            the run: versions, totals, one line per test
    DIR/tests/<name>.json     one file per chaos test: everything its record holds,
                              plus outcome, phase durations, fault windows, checks

Both follow ``journal.schema.json`` next to this module (``"schema":
"pytest-chaos/journal/1"``); the version in that string changes whenever a field is
removed or changes meaning. Only the process that sees every report writes (the xdist
controller, or the single process without xdist): records reach it inside report
attributes, so the index of a parallel run is complete and written once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pytest_chaos.reporting._matrix import build_matrices
from pytest_chaos.reporting._model import ChaosTestResult

__all__ = ["SCHEMA_ID", "JournalWriter", "journal_document", "journal_schema"]

SCHEMA_ID = "pytest-chaos/journal/1"
#: the public name of SCHEMA_ID (``pytest_chaos.reporting.JOURNAL_SCHEMA_ID``)
JOURNAL_SCHEMA_ID = SCHEMA_ID
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def journal_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every journal file validates against."""
    text = resources.files("pytest_chaos.reporting").joinpath("journal.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def versions(record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The versions a reader needs to reproduce a run."""
    from pytest_chaos import __version__

    backend = (record or {}).get("backend") or {}
    return {
        "pytest_chaos": __version__,
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "backend": backend.get("version"),
    }


def file_name(nodeid: str) -> str:
    """A file name for a test: readable, safe on every OS, unique per node id."""
    digest = hashlib.sha1(nodeid.encode()).hexdigest()[:10]
    readable = _UNSAFE.sub("_", nodeid).strip("_.")[:100]
    return f"{readable}-{digest}.json"


def journal_document(result: ChaosTestResult) -> dict[str, Any]:
    """The journal document of one test."""
    record = result.record
    phases = {when: phase.to_json() for when, phase in result.phases.items()}
    durations = {when: phase.duration for when, phase in result.phases.items()}
    durations["total"] = sum(durations.values())
    durations["experiment"] = float(record.get("duration") or 0.0)
    timeline = record.get("timeline") or {"started": None, "events": [], "samples": []}
    return {
        "schema": SCHEMA_ID,
        "kind": "test",
        "nodeid": result.nodeid,
        "worker": record.get("worker", "master"),
        "run_id": record.get("run_id"),
        "outcome": result.outcome,
        "marker": {"name": "chaos", "blast_radius": record.get("blast_radius")},
        "backend": record.get("backend"),
        "versions": versions(record),
        "seed": record.get("seed"),
        "started": record.get("started"),
        "duration": float(record.get("duration") or 0.0),
        "durations": {k: round(v, 6) for k, v in durations.items()},
        "phases": phases,
        "failure": result.failure,
        "skip": result.skip,
        "faults": [f.to_json() for f in result.faults],
        "checks": [c.to_json() for c in result.checks],
        "aborted": record.get("aborted"),
        "aborts": [
            {
                "source": a.source,
                "reason": a.reason,
                "healed": list(a.healed),
                "t": a.t,
                "wall": a.wall,
            }
            for a in result.aborts
        ],
        "leftovers": list(record.get("leftovers") or []),
        "schedule": schedule_steps(timeline),
        "source": record.get("source"),
        "explore": record.get("explore"),
        "timeline": timeline,
    }


def schedule_steps(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of the test's schedules (``chaos.schedule``, YAML game days): planned
    and actual start in timeline seconds, lateness in milliseconds."""
    steps = []
    for event in timeline.get("events", []):
        if event.get("kind") != "note" or event.get("name") != "schedule_step":
            continue
        data = event.get("data") or {}
        steps.append(
            {
                "step": str(data.get("step", "")),
                "target": event.get("target", ""),
                "fault": data.get("fault")
                or (f"heal {data['heals']}" if data.get("heals") else None),
                "at": data.get("at"),
                "planned": data.get("planned"),
                "actual": data.get("actual"),
                "late_ms": data.get("late_ms"),
                "inject_ms": data.get("inject_ms"),
                "time_scale": data.get("time_scale"),
                "source": data.get("source") or None,
            }
        )
    return steps


def _write_json(path: Path, document: dict[str, Any]) -> None:
    # write-then-rename: a reader (or a crashed run) never sees half a file
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


class JournalWriter:
    """Writes the journal of one run into ``directory``.

    Test files are written as each test finishes, so a run killed half way still
    leaves a journal of what ran; the index is written at the end of the session.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tests_dir = directory / "tests"
        self.started = time.time()
        self._entries: list[dict[str, Any]] = []
        self._results: list[ChaosTestResult] = []

    def prepare(self) -> None:
        """Create the directory and drop the test files of an earlier journal there.

        Only files this writer's layout owns are removed, and only when the directory
        holds a pytest-chaos index: pointing ``--chaos-journal`` at a directory with
        other files never deletes them.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(
                f"--chaos-journal {self.directory}: cannot create the directory ({exc}); "
                "pass a writable directory path"
            ) from exc
        index = self.directory / "index.json"
        if index.is_file():
            with contextlib.suppress(OSError, ValueError):
                old = json.loads(index.read_text())
                if isinstance(old, dict) and str(old.get("schema", "")).startswith(
                    "pytest-chaos/journal/"
                ):
                    for stale in self.tests_dir.glob("*.json"):
                        stale.unlink()
                    index.unlink()
        self.tests_dir.mkdir(exist_ok=True)

    def add(self, result: ChaosTestResult) -> Path:
        """Write the file of one finished test and remember it for the index."""
        document = journal_document(result)
        path = self.tests_dir / file_name(result.nodeid)
        _write_json(path, document)
        self._results.append(result)
        self._entries.append(
            {
                "nodeid": result.nodeid,
                "file": f"tests/{path.name}",
                "outcome": document["outcome"],
                "worker": document["worker"],
                "seed": document["seed"],
                "backend": (document["backend"] or {}).get("kind"),
                "duration": document["durations"]["total"],
                "faults": len(result.faults),
                "checks": len(result.checks),
                "checks_failed": sum(1 for c in result.checks if not c.passed),
                "aborted": bool(document["aborted"]),
                "skip_reason": (document["skip"] or {}).get("reason"),
            }
        )
        return path

    def finish(self, services: Sequence[Mapping[str, Any]] = ()) -> Path:
        """Write ``index.json`` and return its path.

        ``services`` describes the services the run started (``name``, ``kind``,
        ``provider``, ``version``), merged from every worker.
        """
        finished = time.time()
        outcomes = Counter(e["outcome"] for e in self._entries)
        results: Sequence[ChaosTestResult] = self._results
        run_ids = sorted({str(r.record["run_id"]) for r in results if r.record.get("run_id")})
        index = {
            "schema": SCHEMA_ID,
            "kind": "index",
            "run_id": run_ids[0] if len(run_ids) == 1 else None,
            "versions": versions(results[0].record if results else None),
            "started": self.started,
            "finished": finished,
            "duration": round(finished - self.started, 6),
            "workers": sorted({str(e["worker"]) for e in self._entries}),
            "seeds": sorted({e["seed"] for e in self._entries if isinstance(e["seed"], int)}),
            "totals": {
                "tests": len(self._entries),
                **{k: outcomes[k] for k in ("passed", "failed", "error", "aborted", "skipped")},
                "faults": sum(e["faults"] for e in self._entries),
                "checks": sum(e["checks"] for e in self._entries),
                "checks_failed": sum(e["checks_failed"] for e in self._entries),
                "aborts": sum(len(r.aborts) for r in results),
            },
            "services": [dict(service) for service in services],
            "tests": sorted(self._entries, key=lambda e: str(e["nodeid"])),
            "explore": [m.to_json() for m in build_matrices(results)],
        }
        path = self.directory / "index.json"
        _write_json(path, index)
        return path

    def __repr__(self) -> str:
        return f"<JournalWriter {str(self.directory)!r} tests={len(self._entries)}>"
