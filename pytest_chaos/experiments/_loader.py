"""Load YAML experiment files with line numbers and check them against the format.

PyYAML's composed nodes carry start marks, so every value keeps the line it was written
on; a mistake is reported as ``file:line: key: rule. fix``. The checks are the shipped
JSON Schema (``experiment.schema.json``: keys, types, required keys; walked here, so that
no validator library is needed at run time) and then what a schema cannot say: units,
fault names, references between targets, probes and steps, and the blast radius.
``yaml`` is imported only when a file is loaded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_chaos.experiments._faults import parse_fault
from pytest_chaos.experiments._units import (
    UnitError,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = ["API_VERSION", "Document", "ExperimentError", "load_file", "schema"]

API_VERSION = "pytest-chaos/v1"
Path_ = tuple[str | int, ...]


class ExperimentError(Exception):
    """A mistake in a YAML experiment: the message names ``file:line``, the key, the
    rule and the fix. Raised at collection, before anything is injected."""

    def __init__(self, path: Path | str, line: int, key: str, message: str) -> None:
        self.path, self.line, self.key = str(path), line, key
        super().__init__(f"{path}:{line}: {key}: {message}")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the format, shipped in the package."""
    text = resources.files("pytest_chaos.experiments").joinpath("experiment.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text())
    return loaded


@dataclass
class Document:
    """One YAML document of a file: its data, and the line of every value."""

    path: Path
    index: int
    data: dict[str, Any]
    lines: dict[Path_, int] = field(default_factory=dict)
    #: the path as reports show it (the collector makes it relative to the rootdir)
    shown: str = ""

    @property
    def name(self) -> str:
        """``metadata.name``."""
        return str(self.data["metadata"]["name"])

    @property
    def kind(self) -> str:
        """``Experiment`` or ``GameDay``."""
        return str(self.data["kind"])

    @property
    def spec(self) -> dict[str, Any]:
        """The ``spec`` mapping."""
        spec: dict[str, Any] = self.data["spec"]
        return spec

    @property
    def line(self) -> int:
        """The line the document starts on."""
        return self.lines.get((), 1)

    def line_of(self, path: Path_) -> int:
        """The line of the value at ``path`` (or of its closest parent)."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def where(self, path: Path_) -> str:
        """``file:line``."""
        return f"{self.shown or self.path}:{self.line_of(path)}"

    def error(self, path: Path_, message: str) -> ExperimentError:
        """An :class:`ExperimentError` at ``path``."""
        return ExperimentError(self.path, self.line_of(path), dotted(path), message)


def dotted(path: Path_) -> str:
    """``("spec", "method", 0, "at")`` -> ``spec.method[0].at``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


# -- YAML with lines --------------------------------------------------------------------


def _convert(node: Any, path: Path_, lines: dict[Path_, int], file: Path) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader("").construct_object(key_node)
            if not isinstance(key, str):
                raise ExperimentError(
                    file,
                    key_node.start_mark.line + 1,
                    dotted(path),
                    f"key {key!r} is not a string; write keys as words (quote them if needed).",
                )
            if key in out:
                raise ExperimentError(
                    file, key_node.start_mark.line + 1, dotted((*path, key)),
                    "the key is written twice; keep one.",
                )  # fmt: skip
            out[key] = _convert(value_node, (*path, key), lines, file)
            # the key's line: a block value (a list, a mapping) starts on the next one
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(n, (*path, i), lines, file) for i, n in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node)


def _documents(path: Path) -> Iterator[tuple[Any, dict[Path_, int]]]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - pyyaml is in the yaml and dev extras
        raise ExperimentError(
            path, 1, "(file)", "YAML experiments need PyYAML; pip install 'pytest-chaos[yaml]'."
        ) from None
    text = path.read_text(encoding="utf-8")
    try:
        for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
            if node is None:
                continue
            lines: dict[Path_, int] = {}
            yield _convert(node, (), lines, path), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ExperimentError(
            path, line, "(syntax)", f"not valid YAML: {exc.problem}; fix the syntax."
        ) from None


# -- the schema, walked -------------------------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema()["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _check(doc: Document, value: Any, node: dict[str, Any], path: Path_) -> None:
    node = _resolve(node)
    if "const" in node and value != node["const"]:
        raise doc.error(path, f"must be {node['const']!r}, got {value!r}.")
    if "enum" in node and value not in node["enum"]:
        raise doc.error(path, f"{value!r} is not allowed; use one of {node['enum']}.")
    if "type" in node:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        ok = any(
            isinstance(value, _TYPES[n]) and not (n != "boolean" and isinstance(value, bool))
            for n in names
        )
        if not ok and node.get("pattern") in _UNIT_HINT and isinstance(value, int | float):
            hint = _UNIT_HINT[node["pattern"]].removeprefix(": ")
            raise doc.error(path, f"{value!r} has no unit; write {hint}.")
        if not ok:
            article = " or ".join(names)
            example = f" (e.g. {_EXAMPLES[path[-1]]})" if path and path[-1] in _EXAMPLES else ""
            raise doc.error(
                path, f"{value!r} is a {type(value).__name__}; write a {article}{example}."
            )
    if "pattern" in node and isinstance(value, str) and not re.search(node["pattern"], value):
        unit = _UNIT_HINT.get(node.get("pattern", ""), "")
        raise doc.error(path, f"{value!r} does not match {node['pattern']}{unit}.")
    if isinstance(value, int | float):
        for bound, word in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">")):
            if bound not in node:
                continue
            limit = node[bound]
            ok = (
                value > limit if word == ">" else value >= limit if word == ">=" else value <= limit
            )
            if not ok:
                raise doc.error(path, f"{value!r} must be {word} {limit}.")
    if isinstance(value, dict) and node.get("type") == "object":
        props: dict[str, Any] = node.get("properties", {})
        extra = node.get("additionalProperties", True)
        for key in node.get("required", ()):
            if key not in value:
                raise doc.error(path, f"the required key {key!r} is missing; add it.")
        for key, item in value.items():
            if key in props:
                _check(doc, item, props[key], (*path, key))
            elif extra is False:
                close = _closest(key, props)
                raise doc.error(
                    (*path, key),
                    f"unknown key {key!r}; allowed here: {', '.join(props)}."
                    + (f" Did you mean {close!r}?" if close else ""),
                )
            elif isinstance(extra, dict):
                _check(doc, item, extra, (*path, key))
    if isinstance(value, list) and "items" in node:
        for i, item in enumerate(value):
            _check(doc, item, node["items"], (*path, i))


_UNIT_HINT = {
    r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$": ": a duration with its unit, e.g. 200ms, 30s or 15m",
    r"^[0-9]+(\.[0-9]+)?%$": ": a percentage, e.g. 5% or 0.5%",
    r"^[0-9]+(\.[0-9]+)?/(s|m)$": ": a rate, e.g. 20/s or 600/m",
    r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$": ": module:function, e.g. "
    "mypkg.probes:checkout",
}
_EXAMPLES = {"uses": "[shop]", "targets": "[postgres]", "method": "[{at: 0s, fault: down}]"}


def _closest(key: str, options: Any) -> str | None:
    import difflib

    found = difflib.get_close_matches(key, list(options), n=1)
    return found[0] if found else None


# -- what a schema cannot say -------------------------------------------------------------


def _semantics(doc: Document) -> None:
    spec = doc.spec
    targets: dict[str, Any] = spec.get("targets") or {}
    probes: dict[str, Any] = spec.get("probes") or {}
    radius = spec["blast_radius"]

    for name, target in targets.items():
        if len(target) != 1:
            raise doc.error(
                ("spec", "targets", name),
                'give exactly one of upstream (a proxy to create: "{fixture.attr}", '
                '"${ENV}" or host:port) or proxy (a ChaosProxy a fixture made: "{shop.db}").',
            )
    for name, probe in probes.items():
        kinds = [k for k in ("http", "tcp", "call") if k in probe]
        if len(kinds) != 1:
            raise doc.error(
                ("spec", "probes", name),
                "a probe is one of http: {url or target, path, expect_status}, tcp: TARGET "
                "or call: module:function.",
            )
        http = probe.get("http") or {}
        if "http" in probe and ("url" in http) == ("target" in http):
            raise doc.error(("spec", "probes", name, "http"), "give exactly one of url or target.")
        for key, ref in (("tcp", probe.get("tcp")), ("target", http.get("target"))):
            if ref is not None and ref not in targets:
                where: Path_ = ("spec", "probes", name, "tcp")
                if key == "target":
                    where = ("spec", "probes", name, "http", "target")
                raise _missing_target(doc, where, str(ref), targets)

    def probe_ref(path: Path_, value: Any) -> None:
        if value not in probes:
            raise doc.error(
                path,
                f"no probe named {value!r}; the probes are {sorted(probes)}. Define it under "
                "spec.probes.",
            )

    def units(path: Path_, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                units((*path, key), item)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                units((*path, i), item)
        elif path[-1] == "probe":
            probe_ref(path, value)
        elif path[-1] in _PARSERS and isinstance(value, str):
            try:
                _PARSERS[str(path[-1])](value)
            except UnitError as exc:
                raise doc.error(path, str(exc)) from None

    units(("spec",), spec)

    names: set[str] = set()
    at: Path_
    for i, step in enumerate(spec.get("method") or []):
        at = ("spec", "method", i)
        if "fault" in step:
            try:
                parse_fault(step["fault"])
            except (UnitError, ValueError) as exc:
                raise doc.error((*at, "fault"), str(exc)) from None
            if "target" not in step:
                raise doc.error(at, "a fault needs target: the name of one of spec.targets.")
        if "target" in step:
            target = step["target"]
            if target not in targets:
                raise _missing_target(doc, (*at, "target"), target, targets)
            if "fault" in step and not _allows(radius, target):
                raise doc.error(
                    (*at, "target"),
                    f"blast_radius does not include {target!r}; this experiment may fault "
                    f"{list(radius.get('targets', []))}. Add {target!r} to "
                    "spec.blast_radius.targets or fault a target in the radius.",
                )
        if "for" in step and "fault" not in step and "load" not in step:
            raise doc.error((*at, "for"), "for: needs a fault or a load to end; add one.")
        if "heal" in step and step["heal"] not in names:
            raise doc.error(
                (*at, "heal"),
                f"no earlier step named {step['heal']!r}; name the step that injects "
                "(name: ...) and heal it later.",
            )
        if "name" in step:
            if step["name"] in names:
                raise doc.error((*at, "name"), "the name is used twice; step names are unique.")
            names.add(step["name"])
    for i, criterion in enumerate(spec.get("success_criteria") or []):
        at = ("spec", "success_criteria", i)
        if ("probe" in criterion) == ("recovers" in criterion):
            raise doc.error(
                at,
                "a criterion is an objective (probe: with p99/max_error_rate, from/to) or "
                "recovers: {probe, within}; give one.",
            )
    if doc.kind == "GameDay" and not spec.get("method"):
        raise doc.error(("spec",), "a GameDay needs method: its timed steps; add them.")


def _missing_target(doc: Document, path: Path_, name: str, targets: dict[str, Any]) -> Exception:
    return doc.error(
        path,
        f"no target named {name!r}; the targets are {sorted(targets)}. Add it under "
        "spec.targets with upstream: or proxy:.",
    )


def _allows(radius: dict[str, Any], target: str) -> bool:
    import fnmatch

    included = any(fnmatch.fnmatchcase(target, p) for p in radius.get("targets", ()))
    excluded = any(fnmatch.fnmatchcase(target, p) for p in radius.get("exclude", ()))
    return included and not excluded


_PARSERS: dict[str, Any] = {
    **{k: parse_duration for k in ("at", "for", "within", "interval", "from", "to", "timeout")},
    **{k: parse_duration for k in ("p50", "p95", "p99", "max_fault_seconds")},
    "max_error_rate": parse_percent,
    "rate": parse_rate,
}


def load_file(path: Path) -> list[Document]:
    """Every document of ``path``, checked; :class:`ExperimentError` on the first mistake."""
    documents: list[Document] = []
    seen: dict[str, int] = {}
    for index, (data, lines) in enumerate(_documents(path)):
        doc = Document(path, index, data if isinstance(data, dict) else {}, lines)
        if not isinstance(data, dict):
            raise doc.error((), "a document is a mapping starting apiVersion: pytest-chaos/v1.")
        if data.get("apiVersion") != API_VERSION:
            raise doc.error(
                ("apiVersion",),
                f"apiVersion is {data.get('apiVersion')!r}; write apiVersion: {API_VERSION}.",
            )
        _check(doc, data, schema(), ())
        _semantics(doc)
        if doc.name in seen:
            raise doc.error(("metadata", "name"), "the name is used twice in this file.")
        seen[doc.name] = index
        documents.append(doc)
    return documents
