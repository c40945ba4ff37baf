"""The timeline of one chaos experiment: every inject, heal, check and abort.

The timeline is the single source for the terminal summary, the JSON journal and the
Allure attachments. Everything stored in it is JSON-safe so it can cross xdist
processes inside report attributes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Event", "EventKind", "Sample", "Timeline"]

EventKind = Literal["inject", "heal", "check", "abort", "note"]
_KINDS: frozenset[str] = frozenset({"inject", "heal", "check", "abort", "note"})


@dataclass(frozen=True)
class Event:
    """One thing that happened during an experiment.

    ``t`` is seconds on the monotonic clock since the timeline started, ``wall`` the
    Unix time. ``name`` is the fault type (``latency``), check name (``steady_state``)
    or a short label; ``target`` the proxy or service concerned ("" if none).
    """

    kind: EventKind
    name: str
    target: str
    t: float
    wall: float
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the event as a JSON-safe dict."""
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "t": round(self.t, 6),
            "wall": self.wall,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Sample:
    """One probe call: when it started (timeline seconds), how long it took, success."""

    label: str
    t: float
    latency: float
    ok: bool

    def to_json(self) -> dict[str, Any]:
        """Return the sample as a JSON-safe dict."""
        return {"label": self.label, "t": round(self.t, 6), "latency": self.latency, "ok": self.ok}


class Timeline:
    """An append-only, thread-safe record of an experiment.

    >>> tl = Timeline()
    >>> e = tl.record("inject", "latency", target="redis", fault_id="f1")
    >>> e.kind, e.target
    ('inject', 'redis')
    """

    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._t0 = clock()
        self._wall0 = time.time()
        self._lock = threading.Lock()
        self._events: list[Event] = []
        self._samples: list[Sample] = []

    @property
    def started_wall(self) -> float:
        """Unix time at which the timeline started."""
        return self._wall0

    def now(self) -> float:
        """Seconds since the timeline started, on the monotonic clock."""
        return float(self._clock() - self._t0)

    def record(self, kind: EventKind, name: str, *, target: str = "", **data: Any) -> Event:
        """Append an event and return it. ``data`` must be JSON-safe."""
        if kind not in _KINDS:
            raise ValueError(f"unknown timeline event kind {kind!r}; use one of {sorted(_KINDS)}")
        t = self.now()
        event = Event(kind, name, target, t, self._wall0 + t, dict(data))
        with self._lock:
            self._events.append(event)
        return event

    def sample(self, label: str, *, t: float, latency: float, ok: bool) -> None:
        """Record one probe call (``t`` from :meth:`now` taken before the call)."""
        with self._lock:
            self._samples.append(Sample(label, t, latency, ok))

    @property
    def events(self) -> list[Event]:
        """A copy of the events so far, oldest first."""
        with self._lock:
            return list(self._events)

    @property
    def samples(self) -> list[Sample]:
        """A copy of the probe samples so far, oldest first."""
        with self._lock:
            return list(self._samples)

    def of_kind(self, kind: EventKind) -> list[Event]:
        """The events of one kind, oldest first."""
        return [e for e in self.events if e.kind == kind]

    def to_json(self) -> dict[str, Any]:
        """The whole timeline as JSON-safe data: ``{"started", "events", "samples"}``."""
        return {
            "started": self._wall0,
            "events": [e.to_json() for e in self.events],
            "samples": [s.to_json() for s in self.samples],
        }

    def __repr__(self) -> str:
        events = self.events
        return f"<Timeline events={len(events)} samples={len(self._samples)}>"
