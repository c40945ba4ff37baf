"""Run a loaded YAML experiment with the test's ``chaos`` controller and fixtures.

The order is the method's: resolve the targets (create proxies, or take the ones a
fixture made), check the steady state, start the background load, run the method as a
``chaos.schedule`` (spec-level ``abort_when`` guards every fault step), judge the success
criteria over their windows and ``recovers`` after the heal, then heal everything and run
the ``rollback`` callables, whatever happened.
"""

from __future__ import annotations

import http.client
import importlib
import inspect
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pytest_chaos.experiment import AbortWhen, Recovers, SteadyState, Step
from pytest_chaos.experiments._faults import parse_fault
from pytest_chaos.experiments._loader import Document
from pytest_chaos.experiments._units import parse_duration, parse_percent, parse_rate

__all__ = ["ProbeFailed", "run_document", "substitute"]

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*)\}")
_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]+)\]")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProbeFailed(Exception):
    """A probe call that did not get the expected answer."""


def _attr(fixtures: Mapping[str, Any], name: str, attrs: str) -> Any:
    """``fixtures[name]`` then each ``.attr`` or ``[index]`` of ``attrs``."""
    value = fixtures[name]
    for match in _PART.finditer(attrs):
        attr, index = match.groups()
        value = value[int(index)] if index is not None else getattr(value, attr)
    return value


def substitute(text: str, fixtures: Mapping[str, Any], *, whole: bool = False) -> Any:
    """``"{shop.db.address}"`` and ``"${ENV}"`` in ``text``; with ``whole`` a string that
    is one reference returns the object itself (``"{shop.db}"`` -> the ChaosProxy).
    ``[N]`` indexes a fixture value that is a tuple or list (``"{cache[0]}"``)."""
    if whole:
        match = _FIELD.fullmatch(text.strip())
        if match:
            return _attr(fixtures, match.group(1), match.group(2))

    def env(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise LookupError(f"environment variable {m.group(1)} is not set")
        return os.environ[m.group(1)]

    text = _ENV.sub(env, text)
    return _FIELD.sub(lambda m: str(_attr(fixtures, m.group(1), m.group(2))), text)


def _call_with(fn: Callable[..., Any], fixtures: Mapping[str, Any]) -> Any:
    """Call ``fn`` with the fixtures its parameters name."""
    params = inspect.signature(fn).parameters
    return fn(**{name: fixtures[name] for name in params if name in fixtures})


def _callable(ref: str) -> Callable[..., Any]:
    module, _, name = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj  # type: ignore[no-any-return]


class _Experiment:
    def __init__(self, doc: Document, chaos: Any, fixtures: dict[str, Any]) -> None:
        self.doc = doc
        self.spec = doc.spec
        self.chaos = chaos
        self.fixtures = fixtures
        self.proxies: dict[str, Any] = {}
        self.probes: dict[str, Callable[[], object]] = {}
        self.scale = float(self.spec.get("time_scale", 1.0)) * float(chaos.time_scale)
        self.surges: list[_Surge] = []

    # -- targets and probes -----------------------------------------------------------

    def targets(self) -> None:
        for name, target in (self.spec.get("targets") or {}).items():
            if "proxy" in target:
                proxy = substitute(target["proxy"], self.fixtures, whole=True)
                if getattr(proxy, "name", None) != name:
                    raise ValueError(
                        f"{self.doc.where(('spec', 'targets', name))}: target {name!r} is "
                        f"{proxy!r}, a proxy named {getattr(proxy, 'name', None)!r}; the "
                        "target's name must be the proxy's (the blast radius uses it)."
                    )
                self.proxies[name] = proxy
            else:
                upstream = substitute(target["upstream"], self.fixtures, whole=True)
                self.proxies[name] = self.chaos.proxy(name, upstream=upstream)
        for name, probe in (self.spec.get("probes") or {}).items():
            self.probes[name] = self._probe(name, probe)

    def _probe(self, name: str, probe: dict[str, Any]) -> Callable[[], object]:
        timeout = parse_duration(probe.get("timeout", "2s"))
        if "call" in probe:
            fn = _callable(probe["call"])
            return lambda: _call_with(fn, self.fixtures)
        if "tcp" in probe:
            proxy = self.proxies[probe["tcp"]]

            def connect() -> None:
                with socket.create_connection((proxy.host, proxy.port), timeout=timeout):
                    pass

            return connect
        spec = probe["http"]
        timeout = parse_duration(spec.get("timeout", "2s"))
        if "target" in spec:
            base = f"http://{self.proxies[spec['target']].address}"
        else:
            base = str(substitute(spec["url"], self.fixtures))
        url = base.rstrip("/") + str(substitute(spec.get("path", ""), self.fixtures))
        method = spec.get("method", "GET")
        body = spec.get("body")
        headers = dict(spec.get("headers") or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        expect = int(spec.get("expect_status", 200))
        match = re.match(r"^https?://([^/]+)(.*)$", url)
        if match is None:
            raise ValueError(f"probe {name!r}: {url!r} is not an http:// URL")
        host, path = match.group(1), match.group(2) or "/"

        def request() -> int:
            conn = http.client.HTTPConnection(host, timeout=timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            finally:
                conn.close()
            if response.status != expect:
                raise ProbeFailed(
                    f"probe {name!r}: {method} {url} answered {response.status}, expected {expect}"
                )
            return response.status

        return request

    # -- pieces -------------------------------------------------------------------------

    def _objective(self, item: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("p50", "p95", "p99", "interval"):
            if key in item:
                out[key] = parse_duration(item[key])
        if "max_error_rate" in item:
            out["max_error_rate"] = parse_percent(item["max_error_rate"])
        if "concurrency" in item:
            out["concurrency"] = int(item["concurrency"])
        return out

    def steady_state(self) -> None:
        for i, item in enumerate(self.spec.get("steady_state") or []):
            at = ("spec", "steady_state", i)
            kwargs = self._objective(item)
            if "calls" in item:
                kwargs["calls"] = int(item["calls"])
            if "for" in item:
                kwargs["duration"] = parse_duration(item["for"])
            if "calls" not in kwargs and "duration" not in kwargs:
                kwargs["calls"] = 10
            self.chaos.steady_state(
                self.probes[item["probe"]],
                label=f"steady_state {item['probe']} ({self.doc.where(at)})",
                **kwargs,
            )

    def _abort(self, item: dict[str, Any]) -> AbortWhen:
        return AbortWhen(
            self.probes[item["probe"]],
            max_error_rate=(
                parse_percent(item["max_error_rate"]) if "max_error_rate" in item else None
            ),
            consecutive=item.get("consecutive"),
            min_calls=int(item.get("min_calls", 10)),
            interval=parse_duration(item.get("interval", "50ms")),
        )

    def steps(self) -> list[Step]:
        guards = self.spec.get("abort_when") or []
        steps = []
        for i, item in enumerate(self.spec.get("method") or []):
            fault: Callable[[], Any] | None = None
            if "fault" in item:
                spec, proxy = parse_fault(item["fault"]), self.proxies[item["target"]]
                fault = lambda spec=spec, proxy=proxy: spec.inject(proxy)  # noqa: E731
            elif "load" in item:
                fault = lambda item=item: _Surge(self, item["load"])  # noqa: E731
            abort = item.get("abort_when")
            if abort is None and guards and "fault" in item:
                abort = guards[0]
            steps.append(
                Step(
                    at=parse_duration(item["at"]),
                    fault=fault,
                    for_=parse_duration(item["for"]) if "for" in item else None,
                    heal=item.get("heal"),
                    name=item.get("name", f"step {i + 1}"),
                    expect=(
                        SteadyState(
                            self.probes[item["expect"]["probe"]], **self._objective(item["expect"])
                        )
                        if "expect" in item
                        else None
                    ),
                    recovers=self._recovers(item["recovers"]) if "recovers" in item else None,
                    abort_when=self._abort(abort) if abort else None,
                    source=self.doc.where(("spec", "method", i)),
                )
            )
        return steps

    def _recovers(self, item: dict[str, Any]) -> Recovers:
        return Recovers(
            self.probes[item["probe"]],
            within=parse_duration(item["within"]),
            consecutive=int(item.get("consecutive", 3)),
        )

    def method_end(self, steps: list[Step]) -> float:
        ends = [s.at + (s.for_ or 0.0) for s in steps]
        return max(ends, default=0.0) * self.scale

    def criteria(self, end: float, errors: list[BaseException]) -> list[threading.Thread]:
        threads = []
        for item in self.spec.get("success_criteria") or []:
            if "probe" not in item:
                continue
            start = parse_duration(item["from"]) * self.scale if "from" in item else 0.0
            stop = parse_duration(item["to"]) * self.scale if "to" in item else end
            kwargs = self._objective(item)
            probe = self.probes[item["probe"]]

            def judge(start: float = start, stop: float = stop, kwargs: Any = kwargs,
                      probe: Any = probe, name: str = item["probe"]) -> None:  # fmt: skip
                try:
                    time.sleep(start)
                    self.chaos.steady_state(
                        probe,
                        duration=max(stop - start, 0.1),
                        before_faults=False,
                        label=f"success_criteria {name}",
                        **kwargs,
                    )
                except BaseException as exc:
                    errors.append(exc)

            threads.append(threading.Thread(target=judge, name="chaos-criterion", daemon=True))
        return threads

    def recovers_after(self) -> None:
        for item in self.spec.get("success_criteria") or []:
            if "recovers" in item:
                bound = self._recovers(item["recovers"])
                self.chaos.recovers(bound.probe, within=bound.within, consecutive=bound.consecutive)

    def rollback(self) -> None:
        for ref in self.spec.get("rollback") or []:
            _call_with(_callable(ref), self.fixtures)

    # -- the whole --------------------------------------------------------------------

    def run(self) -> None:
        self.targets()
        self.steady_state()
        loads = [_Surge(self, item) for item in self.spec.get("load") or []]
        errors: list[BaseException] = []
        try:
            steps = self.steps()
            judges = self.criteria(self.method_end(steps), errors)
            run = self.chaos.schedule(steps, time_scale=self.scale) if steps else None
            for judge in judges:
                judge.start()
            try:
                if run is not None:
                    run.wait()
            finally:
                for judge in judges:
                    judge.join()
            if errors:
                raise errors[0]
            for load in loads:
                load.heal()
            self.recovers_after()
        finally:
            for surge in self.surges:
                surge.join()
            try:
                self.chaos.heal_all(by="test")
            finally:
                self.rollback()


class _Surge:
    """Background probe traffic at a rate (``load:``): traffic, not a fault, so it needs
    no blast radius; it quacks like a Fault for the schedule (``heal``, ``kind``)."""

    kind = "load"
    id = None

    def __init__(self, experiment: _Experiment, item: dict[str, Any]) -> None:
        experiment.surges.append(self)
        self.target = item["probe"]
        self._probe = experiment.probes[item["probe"]]
        self._timeline = experiment.chaos.timeline
        rate = parse_rate(item["rate"])
        workers = int(item.get("workers", 1))
        self._period = workers / rate
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="chaos-load", daemon=True)
            for _ in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            t = self._timeline.now()
            try:
                ok = self._probe() is not False
            except Exception:
                ok = False
            spent = time.perf_counter() - began
            self._timeline.sample(f"load {self.target}", t=t, latency=spent, ok=ok)
            self._stop.wait(max(0.0, self._period - spent))

    def heal(self, by: str = "test") -> None:
        """Stop the traffic; the threads finish their call and are joined by ``join``
        (not here: a schedule step must not wait for a slow call before the next step)."""
        self._stop.set()

    def join(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def run_document(doc: Document, chaos: Any, fixtures: dict[str, Any]) -> None:
    """Run ``doc`` with the controller ``chaos`` and the requested ``fixtures``."""
    _Experiment(doc, chaos, fixtures).run()
