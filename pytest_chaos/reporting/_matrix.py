"""The resilience matrix of exploration: targets are rows, faults columns.

Built from the ``"explore"`` entry that exploration puts into each item's
``chaos_record`` (data only: this package does not import the explore package). Every
record also lists all cells of its test, so cells that did not run (deselected by the
budget, or skipped) show as ``not run``; an xdist run merges the records of every worker
in the controller like every other report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from pytest_chaos.reporting._model import ChaosTestResult

__all__ = ["Cell", "Matrix", "build_matrices", "matrix_lines", "matrix_svg"]

#: outcome of the item -> the cell's status
_STATUS = {
    "passed": "pass",
    "failed": "fail",
    "aborted": "abort",
    "error": "error",
    "skipped": "not run",
}
_SHORT = {"pass": "ok", "fail": "FAIL", "abort": "ABORT", "error": "ERROR", "not run": "-"}
_MESSAGE = 200


@dataclass
class Cell:
    """One cell: its id, faults, status and the short message of what went wrong."""

    cell: str
    faults: list[dict[str, str]]
    status: str = "not run"
    message: str = ""
    nodeid: str = ""

    def to_json(self) -> dict[str, Any]:
        """The cell as JSON (the journal's ``explore`` cells)."""
        return {
            "cell": self.cell,
            "faults": self.faults,
            "status": self.status,
            "message": self.message,
            "nodeid": self.nodeid,
        }


@dataclass
class Matrix:
    """The matrix of one exploration test (``test`` is its node id without the cell)."""

    test: str
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def baseline(self) -> Cell | None:
        """The baseline cell."""
        return self.cells.get("baseline")

    @property
    def singles(self) -> list[Cell]:
        """The one-fault cells, in catalogue order."""
        return [c for c in self.cells.values() if len(c.faults) == 1]

    @property
    def pairs(self) -> list[Cell]:
        """The two-fault cells."""
        return [c for c in self.cells.values() if len(c.faults) > 1]

    @property
    def rows(self) -> list[str]:
        """The targets, in the marker's order."""
        return list(dict.fromkeys(c.faults[0]["target"] for c in self.singles))

    @property
    def columns(self) -> list[str]:
        """The faults, in catalogue order."""
        return list(dict.fromkeys(c.faults[0]["fault"] for c in self.singles))

    def at(self, target: str, fault: str) -> Cell | None:
        """The cell of ``fault`` on ``target`` (None where the target's kind has no such
        fault, e.g. an HTTP fault on a TCP target)."""
        for c in self.singles:
            if c.faults[0] == {"target": target, "fault": fault}:
                return c
        return None

    def counts(self) -> dict[str, int]:
        """How many cells have each status."""
        out: dict[str, int] = {}
        for c in self.cells.values():
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The matrix as JSON (``explore`` in the journal's index)."""
        return {
            "test": self.test,
            "rows": self.rows,
            "columns": self.columns,
            "counts": self.counts(),
            "cells": [c.to_json() for c in self.cells.values()],
        }


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MESSAGE else line[: _MESSAGE - 3] + "..."


def _message(result: ChaosTestResult, status: str) -> str:
    if status == "pass":
        return ""
    if status == "not run":
        return str((result.skip or {}).get("reason", ""))
    failed = [c for c in result.checks if not c.passed]
    if failed:
        return _short(failed[0].message)
    if result.aborts:
        return _short(f"aborted by {result.aborts[0].source}: {result.aborts[0].reason}")
    failure = result.failure or {}
    return _short(str(failure.get("message") or failure.get("type") or ""))


def _test_of(nodeid: str, cell: str) -> str:
    base, bracket, params = nodeid.partition("[")
    if not bracket:
        return nodeid
    rest = params[:-1] if params.endswith("]") else params
    if rest == cell:
        return base
    for candidate in (f"-{cell}", f"{cell}-"):
        if candidate in rest:
            return f"{base}[{rest.replace(candidate, '', 1)}]"
    return base


def build_matrices(results: Iterable[ChaosTestResult]) -> list[Matrix]:
    """The matrix of every exploration test among ``results``, in the order they ran."""
    matrices: dict[str, Matrix] = {}
    for result in results:
        explore = result.record.get("explore")
        if not isinstance(explore, dict):
            continue
        name = str(explore.get("cell", ""))
        test = _test_of(result.nodeid, name)
        matrix = matrices.setdefault(test, Matrix(test))
        for entry in explore.get("cells") or ():
            cell_name = str(entry.get("cell", ""))
            if cell_name not in matrix.cells:
                matrix.cells[cell_name] = Cell(cell_name, list(entry.get("faults") or []))
        cell = matrix.cells.setdefault(name, Cell(name, list(explore.get("faults") or [])))
        cell.status = _STATUS.get(result.outcome, result.outcome)
        cell.message = _message(result, cell.status)
        cell.nodeid = result.nodeid
    return list(matrices.values())


def matrix_lines(matrices: Sequence[Matrix]) -> list[tuple[str, dict[str, bool]]]:
    """The terminal lines of the matrices (text, markup)."""
    lines: list[tuple[str, dict[str, bool]]] = []
    for matrix in matrices:
        counts = matrix.counts()
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        lines.append((f"resilience matrix: {matrix.test} ({summary})", {"bold": True}))
        baseline = matrix.baseline
        if baseline is not None:
            text = f"  baseline: {baseline.status}"
            if baseline.message:
                text += f" - {baseline.message}"
            lines.append((text, {"red": baseline.status != "pass"}))
        columns, rows = matrix.columns, matrix.rows
        width = max([len(r) for r in rows] + [6])
        widths = [max(len(c), 5) for c in columns]
        header = " " * (width + 4) + "  ".join(
            c.ljust(w) for c, w in zip(columns, widths, strict=True)
        )
        lines.append((header.rstrip(), {}))
        for row in rows:
            marks = []
            for column, w in zip(columns, widths, strict=True):
                cell = matrix.at(row, column)
                marks.append(
                    ("" if cell is None else _SHORT.get(cell.status, cell.status)).ljust(w)
                )
            bad = any(
                (c := matrix.at(row, col)) is not None and c.status in ("fail", "error", "abort")
                for col in columns
            )
            lines.append((f"  {row.ljust(width)}  " + "  ".join(marks).rstrip(), {"red": bad}))
        for cell in matrix.pairs:
            lines.append(
                (
                    f"  pair {cell.cell}: {cell.status}",
                    {"red": cell.status != "pass" and cell.status != "not run"},
                )
            )
        for cell in matrix.cells.values():
            if cell.status in ("fail", "error", "abort") and cell.cell != "baseline":
                lines.append(
                    (f"  {cell.cell}: {cell.status.upper()} {cell.message}", {"red": True})
                )
    return lines


_COLORS = {
    "pass": "#2da44e",
    "fail": "#cf222e",
    "abort": "#bf8700",
    "error": "#8250df",
    "not run": "#d0d7de",
}


def matrix_svg(matrix: Matrix) -> str:
    """The matrix as an SVG heatmap (green pass, red fail, amber abort, violet error,
    grey not run; blank where a target's kind has no such fault)."""
    rows, columns = matrix.rows, matrix.columns
    cell_w, cell_h, left, top = 110, 34, 140, 150
    width = left + cell_w * max(1, len(columns)) + 20
    height = top + cell_h * (len(rows) + 1) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">{escape(matrix.test)}</text>',
    ]
    for j, column in enumerate(columns):
        x = left + j * cell_w + cell_w // 2
        parts.append(
            f'<text x="{x}" y="{top - 8}" transform="rotate(-35 {x} {top - 8})">'
            f"{escape(column)}</text>"
        )
    baseline = matrix.baseline
    all_rows: list[tuple[str, list[Cell | None]]] = []
    if baseline is not None:
        all_rows.append(("baseline", [baseline] + [None] * (len(columns) - 1)))
    all_rows += [(row, [matrix.at(row, c) for c in columns]) for row in rows]
    for i, (row, cells) in enumerate(all_rows):
        y = top + i * cell_h
        parts.append(f'<text x="10" y="{y + cell_h // 2 + 4}">{escape(row)}</text>')
        for j, cell in enumerate(cells):
            if cell is None:
                continue
            x = left + j * cell_w
            title = f"{cell.cell}: {cell.status}" + (f" - {cell.message}" if cell.message else "")
            parts.append(
                f'<g><title>{escape(title)}</title><rect x="{x + 2}" y="{y + 2}" '
                f'width="{cell_w - 4}" height="{cell_h - 4}" rx="3" '
                f'fill="{_COLORS.get(cell.status, "#6e7781")}"/>'
                f'<text x="{x + cell_w // 2}" y="{y + cell_h // 2 + 4}" text-anchor="middle" '
                f'fill="#ffffff">{escape(cell.status)}</text></g>'
            )
    legend_y = height - 14
    for k, (status, color) in enumerate(_COLORS.items()):
        x = 10 + k * 90
        parts.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>')
        parts.append(f'<text x="{x + 16}" y="{legend_y}">{status}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_allure_matrices(directory: Any, matrices: Sequence[Matrix]) -> list[str]:
    """Write one Allure result per matrix, "resilience matrix: <test>", with the SVG
    heatmap attached; return the result files' names.

    Written as Allure's own JSON files (no allure-pytest call), in the process that saw
    every report, so the matrix of an xdist run is whole. The result fails when a cell
    failed, aborted or errored, and its message lists those cells.
    """
    import hashlib
    import json
    import time
    import uuid
    from pathlib import Path

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    now = int(time.time() * 1000)
    written = []
    for matrix in matrices:
        result_id = str(uuid.uuid4())
        attachment = f"{uuid.uuid4()}-attachment.svg"
        (root / attachment).write_text(matrix_svg(matrix), encoding="utf-8")
        bad = [c for c in matrix.cells.values() if c.status in ("fail", "abort", "error")]
        counts = ", ".join(f"{n} {s}" for s, n in sorted(matrix.counts().items()))
        message = f"{len(matrix.cells)} cells: {counts}"
        if bad:
            message += "\n" + "\n".join(f"{c.cell}: {c.status} {c.message}" for c in bad)
        name = f"resilience matrix: {matrix.test}"
        document = {
            "uuid": result_id,
            "historyId": hashlib.md5(name.encode()).hexdigest(),
            "name": name,
            "fullName": name,
            "status": "failed" if bad else "passed",
            "statusDetails": {"message": message},
            "stage": "finished",
            "start": now,
            "stop": now,
            "labels": [
                {"name": "suite", "value": "resilience matrix"},
                {"name": "tag", "value": "chaos_explore"},
            ],
            "attachments": [
                {"name": "resilience matrix heatmap", "source": attachment, "type": "image/svg+xml"}
            ],
            "parameters": [],
        }
        path = root / f"{result_id}-result.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        written.append(path.name)
    return written
