"""The cells of an exploration: which fault on which target, read from the marker.

``@pytest.mark.chaos_explore(targets=..., faults=..., pairs=False, max_items=50)`` is
parsed here into an :class:`ExplorePlan`: a baseline cell, one cell per target x fault,
and with ``pairs=True`` two-fault cells on two different targets. Pure data: the pytest
glue (``_plugin``) turns the cells into items.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.experiments import FAULTS, FaultSpec, UnitError, parse_fault

__all__ = [
    "DEFAULT_FAULTS",
    "KINDS",
    "ExplorePlan",
    "Explored",
    "cell_id",
    "default_catalogue",
    "parse_explore",
]

_TCP = ("down", "latency:500ms", "timeout", "reset_peer", "bandwidth:1KB/s", "slicer")
#: target kind -> the faults exploration tries when the marker names none: ``tcp`` a
#: proxied connection, ``http`` one that carries HTTP, ``service`` a proxied connection
#: to a server that chaos_services started (the proxy made with ``upstream=`` the
#: Service), which can also crash
DEFAULT_FAULTS: dict[str, tuple[str, ...]] = {
    "tcp": _TCP,
    "http": (
        "down",
        "latency:500ms",
        "timeout",
        "reset_peer",
        "bandwidth:1KB/s",
        "slicer",
        "http_error:503",
        "http_error:429",
        "http_delay:2s",
        "http_duplicate",
    ),
    "service": (*_TCP, "crash"),
}
KINDS = tuple(DEFAULT_FAULTS)
_ALLOWED = ("targets", "faults", "pairs", "max_items")
DEFAULT_MAX_ITEMS = 50


def _valid_forms() -> str:
    return ", ".join(example for _, _, example in FAULTS.values())


def cell_id(target: str, fault: str) -> str:
    """``("postgres", "latency:500ms")`` -> ``"postgres-latency-500ms"`` (a test id);
    options join with ``-`` too: ``"memory_limit:4MiB fill=true"`` ->
    ``"redis-memory_limit-4MiB-fill-true"``."""
    text = "-".join(fault.split()).replace(":", "-").replace("=", "-").replace("/", "p")
    return f"{target}-{text}"


@dataclass(frozen=True)
class Explored:
    """The cell an exploration item runs: ``chaos.explored`` in the scenario.

    ``faults`` holds ``(target, fault string)`` pairs: none for the baseline, one for a
    cell of the matrix, two for a pair. ``str(explored)`` is the cell's id
    (``"baseline"``, ``"redis-down"``, ``"redis-down+postgres-latency-500ms"``).
    """

    faults: tuple[tuple[str, str], ...] = ()
    #: the faults of every cell of the same test (the matrix shows those that did not run)
    test_cells: tuple[tuple[tuple[str, str], ...], ...] = field(
        default=(), compare=False, repr=False
    )

    @property
    def baseline(self) -> bool:
        """True for the item without a fault."""
        return not self.faults

    @property
    def target(self) -> str | None:
        """The faulted target (the first one of a pair); ``None`` for the baseline."""
        return self.faults[0][0] if self.faults else None

    @property
    def fault(self) -> str | None:
        """The fault string (the first one of a pair); ``None`` for the baseline."""
        return self.faults[0][1] if self.faults else None

    @property
    def specs(self) -> list[tuple[str, FaultSpec]]:
        """``(target, FaultSpec)`` for each fault, ready to inject."""
        return [(target, parse_fault(text)) for target, text in self.faults]

    @property
    def id(self) -> str:
        """The cell's id, as in the test id."""
        if not self.faults:
            return "baseline"
        return "+".join(cell_id(target, fault) for target, fault in self.faults)

    def to_json(self) -> dict[str, Any]:
        """The cell as the ``explore`` entry of a test's record (journal, matrix)."""
        return {
            "cell": self.id,
            "faults": [{"target": t, "fault": f} for t, f in self.faults],
            "cells": [
                {
                    "cell": Explored(faults).id,
                    "faults": [{"target": t, "fault": f} for t, f in faults],
                }
                for faults in self.test_cells
            ],
        }

    def __str__(self) -> str:
        return self.id


@dataclass
class ExplorePlan:
    """What one ``chaos_explore`` marker asks for: its targets and every cell."""

    targets: dict[str, str]
    faults: dict[str, list[str]]
    cells: list[Explored] = field(default_factory=list)


def _targets(raw: object, where: str) -> dict[str, str]:
    if isinstance(raw, str):
        raw = [raw]
    if isinstance(raw, Mapping):
        targets = {str(k): str(v) for k, v in raw.items()}
    elif isinstance(raw, Sequence) and raw:
        targets = {str(t): "tcp" for t in raw}
    else:
        targets = {}
    if not targets:
        raise ConfigurationError(
            f"{where} needs targets: the proxy names to fault, e.g. targets=['redis'] or "
            "targets={'postgres': 'service', 'payments': 'http'} (http adds the HTTP "
            "faults, service a crash of the server behind the proxy)."
        )
    for name, kind in targets.items():
        if kind not in KINDS:
            raise ConfigurationError(
                f"{where}: target {name!r} has kind {kind!r}; the kinds are "
                f"{', '.join(KINDS)}. Write e.g. targets={{{name!r}: 'http'}}."
            )
    return targets


def _fault_text(raw: object, where: str) -> str:
    if not isinstance(raw, str):
        raise ConfigurationError(
            f"{where}: fault {raw!r} is not a fault string; valid forms: {_valid_forms()}."
        )
    try:
        parse_fault(raw)
    except UnitError as exc:
        raise ConfigurationError(
            f"{where}: bad fault string {raw!r}: {exc}. Valid forms: {_valid_forms()}."
        ) from None
    return raw.strip()


def _fits(text: str, kind: str) -> bool:
    """Whether a fault of ``faults=`` goes to a target of ``kind``: HTTP faults to
    ``http`` targets, a crash and the resource faults to ``service`` targets, the TCP
    faults to every target."""
    spec = parse_fault(text)
    if spec.http:
        return kind == "http"
    if spec.service:
        return kind == "service"
    return True


def _faults_by_target(
    raw: Mapping[Any, Any],
    targets: Mapping[str, str],
    where: str,
    extra: Callable[[str, str], Sequence[str]] | None,
) -> dict[str, list[str]]:
    """``faults={"redis": [...]}``: the faults of each target named, the default
    catalogue of its kind for the others."""
    unknown = sorted(str(name) for name in raw if name not in targets)
    if unknown:
        raise ConfigurationError(
            f"{where}: faults= names {unknown}, which targets= does not declare; the "
            f"targets are {sorted(targets)}."
        )
    faults = default_catalogue({t: k for t, k in targets.items() if t not in raw}, extra)
    for target, kind in targets.items():
        if target not in raw:
            continue
        listed = raw[target]
        if isinstance(listed, str) or not isinstance(listed, Sequence) or not listed:
            raise ConfigurationError(
                f"{where}: faults[{target!r}]={listed!r} is not a list of faults; write "
                f"e.g. faults={{{target!r}: ['down', 'latency:500ms']}}."
            )
        texts = [_fault_text(text, f"{where} (faults of {target!r})") for text in listed]
        misfits = [text for text in texts if not _fits(text, kind)]
        if misfits:
            raise ConfigurationError(
                f"{where}: {misfits} cannot go to {target!r}, a target of kind {kind!r}: "
                "HTTP faults need kind 'http', a crash and the resource faults kind "
                f"'service'. Declare targets={{{target!r}: ...}} of the kind they need."
            )
        faults[target] = list(dict.fromkeys(texts))
    return {target: faults[target] for target in targets}


def default_catalogue(
    targets: Mapping[str, str], extra: Callable[[str, str], Sequence[str]] | None = None
) -> dict[str, list[str]]:
    """The default faults of each target by its kind, plus what ``extra`` (the
    ``pytest_chaos_explore_faults`` hook) adds, without repeats."""
    out: dict[str, list[str]] = {}
    for target, kind in targets.items():
        faults = list(DEFAULT_FAULTS[kind])
        for text in extra(target, kind) if extra is not None else ():
            if text not in faults:
                faults.append(text)
        out[target] = faults
    return out


def parse_explore(
    args: Sequence[object],
    kwargs: Mapping[str, Any],
    *,
    where: str,
    seed: int,
    extra: Callable[[str, str], Sequence[str]] | None = None,
) -> ExplorePlan:
    """Parse a ``chaos_explore`` marker's arguments into its plan.

    ``faults`` is a list (each fault goes to every target whose kind takes it), a
    mapping from target to its list (targets it leaves out get the default catalogue
    of their kind), or ``None`` (the default catalogue, extended by ``extra``).

    Raises :class:`ConfigurationError` naming the argument, the value and the fix: an
    unknown argument, no targets, a bad fault string (with the valid forms), an HTTP
    fault that no target of kind ``http`` can take. ``seed`` chooses the pairs kept
    under ``max_items``.
    """
    where = f"{where}: @pytest.mark.chaos_explore"
    if args:
        raise ConfigurationError(
            f"{where} got positional arguments {list(args)!r}; write targets=[...] and "
            "faults=[...] as keywords."
        )
    unknown = sorted(set(kwargs) - set(_ALLOWED))
    if unknown:
        raise ConfigurationError(f"{where} got unknown argument(s) {unknown}; allowed: {_ALLOWED}.")
    targets = _targets(kwargs.get("targets"), where)
    max_items = kwargs.get("max_items", DEFAULT_MAX_ITEMS)
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise ConfigurationError(
            f"{where}: max_items={max_items!r} is not a positive whole number of items; "
            "write e.g. max_items=40."
        )
    pairs = kwargs.get("pairs", False)
    if not isinstance(pairs, bool):
        raise ConfigurationError(f"{where}: pairs={pairs!r}; write pairs=True or pairs=False.")
    raw_faults = kwargs.get("faults")
    if isinstance(raw_faults, Mapping):
        faults = _faults_by_target(raw_faults, targets, where, extra)
    elif raw_faults is None:
        for target, texts in default_catalogue(targets, extra).items():
            for text in texts:
                _fault_text(text, f"{where} (catalogue of {target!r})")
        faults = default_catalogue(targets, extra)
    else:
        if isinstance(raw_faults, str) or not isinstance(raw_faults, Sequence):
            raise ConfigurationError(
                f"{where}: faults={raw_faults!r} is not a list; write e.g. "
                "faults=['down', 'latency:500ms'] (or leave it out for the default catalogue)."
            )
        texts = [_fault_text(raw, where) for raw in raw_faults]
        faults = {target: [t for t in texts if _fits(t, kind)] for target, kind in targets.items()}
        orphans = [t for t in texts if not any(t in f for f in faults.values())]
        http = [t for t in orphans if parse_fault(t).http]
        if http:
            raise ConfigurationError(
                f"{where}: {http} need HTTP traffic, and no target is declared http; "
                f"write targets={{'name': 'http'}} for a proxy that carries HTTP."
            )
        if orphans:
            raise ConfigurationError(
                f"{where}: {orphans} act on the server behind a proxy (a crash, a "
                "resource fault), and no target is "
                "declared service; write targets={'name': 'service'} for a proxy made with "
                "chaos.proxy('name', upstream=<a chaos_services service>)."
            )
    singles = [Explored(((target, text),)) for target, texts in faults.items() for text in texts]
    chosen: list[Explored] = []
    if pairs:
        room = max(0, max_items - 1 - len(singles))
        candidates = [
            Explored(a.faults + b.faults)
            for a, b in itertools.combinations(singles, 2)
            if a.target != b.target
        ]
        if len(candidates) > room:
            keep = set(random.Random(f"{seed}:{where}").sample(range(len(candidates)), room))
            candidates = [c for i, c in enumerate(candidates) if i in keep]
        chosen = candidates
    cells = [Explored(), *singles, *chosen]
    every = tuple(c.faults for c in cells)
    plan = ExplorePlan(targets=targets, faults=faults)
    plan.cells = [Explored(c.faults, every) for c in cells]
    return plan
