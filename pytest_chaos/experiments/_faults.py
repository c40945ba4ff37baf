"""Fault names as strings, in one place: YAML experiments and exploration use the same.

Short form ``down``, ``latency:500ms``, ``reset_peer``, ``timeout``, ``bandwidth:1KB/s``,
``slicer``, ``http_error:503``, ``http_delay:2s``, ``http_duplicate``, ``crash`` (the
server behind the proxy is SIGKILLed 0.5 s after the fault starts and restarts at once;
``crash:2s`` waits 2 s, ``crash:0s`` crashes at once), and the resource faults on the
server behind the proxy: ``cpu_stress:2`` (cores), ``cpu_throttle:0.2`` (CPUs),
``memory_limit:64MiB``, ``memory_pressure:256MiB``, ``fill_disk:16MiB``,
``exhaust_connections`` (until the server refuses one; ``exhaust_connections:5`` holds 5);
or the mapping form ``{latency: 500ms}``.

Faults with more than one argument name the others as ``key=value`` after the first
(``cpu_throttle:0.1 period=500ms``, ``memory_limit:4MiB fill=true``,
``exhaust_connections max_clients=20``, ``http_error:429 retry_after=1s``), or in the
mapping form: ``{http_error: {status: 429, retry_after: 1s, body: "slow down"}}``,
``{cpu_stress: {cores: 2, percent: 80%}}``.
:func:`parse_fault` returns a :class:`FaultSpec`; its :meth:`FaultSpec.inject` calls the
matching method of a ``ChaosProxy`` (Toxiproxy units: milliseconds, KB/s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.experiments._units import (
    UnitError,
    parse_bandwidth,
    parse_duration,
    parse_mib,
    parse_percent,
)

__all__ = [
    "CRASH_AFTER",
    "FAULTS",
    "HTTP_FAULTS",
    "RESOURCE_FAULTS",
    "SERVICE_FAULTS",
    "FaultSpec",
    "parse_fault",
]

#: seconds from a ``crash`` fault's start to the kill when the string gives none: the
#: scenario runs (and acknowledges writes) for that long before its server dies
CRASH_AFTER = 0.5


def _ms(value: object) -> dict[str, Any]:
    return {"ms": round(parse_duration(value) * 1000)}


def _none(value: object) -> dict[str, Any]:
    if value not in (None, "", True):
        raise UnitError(f"takes no value, got {value!r}")
    return {}


def _status(value: object) -> dict[str, Any]:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise UnitError(f"{value!r} is not an HTTP status; write one from 100 to 599, e.g. 503")
    return {"status": value}


_HTTP_ERROR_KEYS = ("status", "retry_after", "body")


def _http_error(value: object) -> dict[str, Any]:
    """``429`` / ``"429"``, or ``{status: 429, retry_after: 1s, body: "..."}``."""
    if not isinstance(value, dict):
        return _status(value)
    unknown = sorted(set(value) - set(_HTTP_ERROR_KEYS))
    if unknown or "status" not in value:
        raise UnitError(
            f"{value!r}: give status (required), retry_after and body, e.g. "
            "{status: 429, retry_after: 1s}"
            + (f"; unknown keys {unknown}" if unknown else "; status is missing")
        )
    out = _status(value["status"])
    if "retry_after" in value:
        seconds = parse_duration(value["retry_after"])
        if seconds != int(seconds):
            raise UnitError(
                f"retry_after {value['retry_after']!r}: Retry-After counts whole seconds; "
                "write e.g. 1s or 2m"
            )
        out["retry_after"] = int(seconds)
    if "body" in value:
        if not isinstance(value["body"], str):
            raise UnitError(f"body {value['body']!r} is not text; write a string")
        out["body"] = value["body"]
    return out


def _after(value: object) -> dict[str, Any]:
    return {"after": CRASH_AFTER if value in (None, "", True) else parse_duration(value)}


def _arguments(value: object, main: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """A scalar is the fault's first argument (``main``); a mapping names its arguments."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise UnitError(f"unknown key(s) {unknown}; its keys are {', '.join(keys)}")
        return dict(value)
    return {} if value in (None, "", True) else {main: value}


def _count(value: object, key: str, example: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnitError(f"{key} {value!r} is not a whole number from 1{example}")
    return value


def _flag(value: object, key: str) -> bool:
    words = {"true": True, "yes": True, "false": False, "no": False}
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise UnitError(f"{key} {value!r} is not true or false")


def _required(arguments: dict[str, Any], key: str, what: str) -> object:
    if key not in arguments:
        raise UnitError(f"needs {key}, {what}")
    return arguments[key]


def _cpu_stress(value: object) -> dict[str, Any]:
    given = _arguments(value, "cores", ("cores", "percent"))
    out: dict[str, Any] = {}
    if "cores" in given:
        out["cores"] = _count(given["cores"], "cores", "")
    if "percent" in given:
        out["percent"] = parse_percent(given["percent"]) * 100
        if out["percent"] <= 0:
            raise UnitError("percent 0% keeps no core busy; write e.g. percent=80%")
    return out


def _cpu_throttle(value: object) -> dict[str, Any]:
    given = _arguments(value, "cpus", ("cpus", "period"))
    cpus = _required(given, "cpus", "the CPUs' worth of time the service keeps")
    try:
        number = float(cpus)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(cpus, bool) or not number > 0:
        raise UnitError(f"cpus {cpus!r} is not a number above 0")
    out: dict[str, Any] = {"cpus": number}
    if "period" in given:
        out["period_ms"] = round(parse_duration(given["period"]) * 1000)
    return out


def _memory_limit(value: object) -> dict[str, Any]:
    given = _arguments(value, "mib", ("mib", "fill"))
    out: dict[str, Any] = {"mib": parse_mib(_required(given, "mib", "the limit"))}
    if "fill" in given:
        out["fill"] = _flag(given["fill"], "fill")
    return out


def _memory_pressure(value: object) -> dict[str, Any]:
    given = _arguments(value, "mib", ("mib",))
    return {"mib": parse_mib(_required(given, "mib", "the memory held"))}


def _fill_disk(value: object) -> dict[str, Any]:
    given = _arguments(value, "mib", ("mib",))
    return {"mib": parse_mib(given["mib"])} if "mib" in given else {}


def _exhaust_connections(value: object) -> dict[str, Any]:
    given = _arguments(value, "n", ("n", "max_clients"))
    out: dict[str, Any] = {}
    if "n" in given:
        out["n"] = _count(given["n"], "n", "; write e.g. exhaust_connections:5")
    if "max_clients" in given:
        out["max_clients"] = _count(
            given["max_clients"], "max_clients", "; write e.g. exhaust_connections max_clients=20"
        )
    return out


#: fault name -> (ChaosProxy method, argument parser, example)
FAULTS: dict[str, tuple[str, Callable[[object], dict[str, Any]], str]] = {
    "down": ("down", _none, "down"),
    "latency": ("latency", _ms, "latency:500ms"),
    "timeout": ("timeout", _none, "timeout"),
    "reset_peer": ("reset_peer", _none, "reset_peer"),
    "bandwidth": ("bandwidth", lambda v: {"kb_per_s": parse_bandwidth(v)}, "bandwidth:1KB/s"),
    "slicer": ("slicer", _none, "slicer"),
    "http_error": ("http_error", _http_error, "http_error:503"),
    "http_delay": ("http_delay", _ms, "http_delay:2s"),
    "http_duplicate": ("http_duplicate", _none, "http_duplicate"),
    "crash": ("crash", _after, "crash:0.5s"),
    "cpu_stress": ("cpu_stress", _cpu_stress, "cpu_stress:2"),
    "cpu_throttle": ("cpu_throttle", _cpu_throttle, "cpu_throttle:0.2"),
    "memory_limit": ("memory_limit", _memory_limit, "memory_limit:64MiB"),
    "memory_pressure": ("memory_pressure", _memory_pressure, "memory_pressure:256MiB"),
    "fill_disk": ("fill_disk", _fill_disk, "fill_disk:16MiB"),
    "exhaust_connections": ("exhaust_connections", _exhaust_connections, "exhaust_connections"),
}

#: the first argument of the faults that take ``key=value`` options after it
_FIRST = {
    "http_error": "status",
    "cpu_stress": "cores",
    "cpu_throttle": "cpus",
    "memory_limit": "mib",
    "memory_pressure": "mib",
    "fill_disk": "mib",
    "exhaust_connections": "n",
}

#: the faults that need HTTP traffic (HTTP toxics of the embedded proxy)
HTTP_FAULTS = frozenset({"http_error", "http_delay", "http_duplicate"})

#: the resource faults (docs/resources.md), on the server behind the proxy
RESOURCE_FAULTS = frozenset(
    {"cpu_stress", "cpu_throttle", "memory_limit", "memory_pressure", "fill_disk"}
    | {"exhaust_connections"}
)

#: the faults that act on the server behind the proxy (a chaos_services service)
SERVICE_FAULTS = frozenset({"crash"}) | RESOURCE_FAULTS


@dataclass(frozen=True)
class FaultSpec:
    """A parsed fault: ``name`` and the keyword arguments of the proxy method."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def inject(self, proxy: Any) -> Any:
        """Inject into ``proxy`` (a ``ChaosProxy``); return the ``Fault``."""
        method = getattr(proxy, FAULTS[self.name][0])
        if self.name in ("latency", "http_delay"):
            return method(self.arguments["ms"])
        if self.name == "bandwidth":
            return method(self.arguments["kb_per_s"])
        if self.name == "crash":
            return method(self.arguments["after"])
        if self.name in RESOURCE_FAULTS:
            return method(**self.arguments)
        if self.name == "http_error":
            extra: dict[str, Any] = {}
            if "retry_after" in self.arguments:
                extra["headers"] = {"Retry-After": str(self.arguments["retry_after"])}
            if "body" in self.arguments:
                extra["body"] = self.arguments["body"]
            return method(self.arguments["status"], **extra)
        return method()

    @property
    def http(self) -> bool:
        """Whether this fault needs HTTP traffic (an HTTP toxic)."""
        return self.name in HTTP_FAULTS

    @property
    def service(self) -> bool:
        """Whether this fault acts on the server behind the proxy (``crash``, the
        resource faults), which the proxy must know: ``chaos.proxy(name,
        upstream=<a chaos_services service>)``."""
        return self.name in SERVICE_FAULTS

    def __str__(self) -> str:
        if not self.arguments:
            return self.name
        if self.name in RESOURCE_FAULTS:  # the first argument may be left out
            items = [f"{key}={value}" for key, value in self.arguments.items()]
            if next(iter(self.arguments)) == _FIRST[self.name]:
                items[0] = items[0].partition("=")[2]
                return f"{self.name}:{' '.join(items)}"
            return " ".join([self.name, *items])
        first, *rest = self.arguments.items()
        options = "".join(f" {key}={value}" for key, value in rest)
        return f"{self.name}:{first[1]}{options}"


def parse_fault(value: object) -> FaultSpec:
    """``"latency:500ms"`` or ``{"latency": "500ms"}`` -> FaultSpec; ValueError otherwise."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
    elif isinstance(value, str):
        name, _, raw = value.partition(":")
        name, *options = name.split() or [""]
        first, *more = raw.split() or [""]
        if "=" in first:
            first, more = "", [first, *more]
        options += more
        argument = first or None
    else:
        raise UnitError(f"{value!r} is not a fault; write e.g. latency:500ms or down")
    name = str(name).strip()
    if name not in FAULTS:
        raise UnitError(
            f"unknown fault {name!r}; use one of {', '.join(f[2] for f in FAULTS.values())}"
        )
    try:
        if isinstance(value, str) and options:
            argument = _with_options(name, argument, options)
        return FaultSpec(name, FAULTS[name][1](argument))
    except UnitError as exc:
        raise UnitError(f"fault {name!r}: {exc} (e.g. {FAULTS[name][2]})") from None


def _with_options(name: str, first: object, options: list[str]) -> dict[str, Any]:
    """``"cpu_throttle:0.1 period=500ms"`` -> ``{"cpus": "0.1", "period": "500ms"}``."""
    if name not in _FIRST:
        raise UnitError(f"takes no key=value options, got {' '.join(options)!r}")
    out: dict[str, Any] = {} if first is None else {_FIRST[name]: first}
    for option in options:
        key, sep, text = option.partition("=")
        if not sep or not key or not text:
            raise UnitError(f"option {option!r} is not key=value")
        if key in out:
            raise UnitError(f"{key} is given twice")
        out[key] = text
    return out
