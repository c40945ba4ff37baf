"""Fault names as strings, in one place: YAML experiments and exploration use the same.

Short form ``down``, ``latency:500ms``, ``reset_peer``, ``timeout``, ``bandwidth:1KB/s``,
``slicer``, ``http_error:503``, ``http_delay:2s``, ``http_duplicate``, ``crash`` (the
server behind the proxy is SIGKILLed 0.5 s after the fault starts and restarts at once;
``crash:2s`` waits 2 s, ``crash:0s`` crashes at once); or the mapping form
``{latency: 500ms}``. ``http_error`` also takes a mapping with a ``Retry-After`` header
and a body: ``{http_error: {status: 429, retry_after: 1s, body: "slow down"}}``.
:func:`parse_fault` returns a :class:`FaultSpec`; its :meth:`FaultSpec.inject` calls the
matching method of a ``ChaosProxy`` (Toxiproxy units: milliseconds, KB/s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.experiments._units import UnitError, parse_bandwidth, parse_duration

__all__ = ["CRASH_AFTER", "FAULTS", "HTTP_FAULTS", "SERVICE_FAULTS", "FaultSpec", "parse_fault"]

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
}

#: the faults that need HTTP traffic (HTTP toxics of the embedded proxy)
HTTP_FAULTS = frozenset({"http_error", "http_delay", "http_duplicate"})

#: the faults that act on the server behind the proxy (a chaos_services service)
SERVICE_FAULTS = frozenset({"crash"})


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
        """Whether this fault acts on the server behind the proxy (``crash``), which the
        proxy must know: ``chaos.proxy(name, upstream=<a chaos_services service>)``."""
        return self.name in SERVICE_FAULTS

    def __str__(self) -> str:
        if not self.arguments:
            return self.name
        first, *rest = self.arguments.items()
        options = "".join(f" {key}={value}" for key, value in rest)
        return f"{self.name}:{first[1]}{options}"


def parse_fault(value: object) -> FaultSpec:
    """``"latency:500ms"`` or ``{"latency": "500ms"}`` -> FaultSpec; ValueError otherwise."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
    elif isinstance(value, str):
        name, _, raw = value.partition(":")
        argument = raw or None
    else:
        raise UnitError(f"{value!r} is not a fault; write e.g. latency:500ms or down")
    name = str(name).strip()
    if name not in FAULTS:
        raise UnitError(
            f"unknown fault {name!r}; use one of {', '.join(f[2] for f in FAULTS.values())}"
        )
    try:
        return FaultSpec(name, FAULTS[name][1](argument))
    except UnitError as exc:
        raise UnitError(f"fault {name!r}: {exc} (e.g. {FAULTS[name][2]})") from None
