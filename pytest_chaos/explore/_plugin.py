"""Sub-plugin: ``@pytest.mark.chaos_explore`` items, their faults and the budget.

- Collection: ``pytest_generate_tests`` parametrizes a marked test with one
  :class:`Explored` cell per item (``test_checkout[baseline]``, ``[redis-down]``), so
  pytest's own ``-k``, ``-m``, ``--lf`` and xdist's distribution see ordinary items.
  A bad marker is a collection error. ``--chaos-explore-budget`` then deselects (a
  number of items) or orders (seconds) the cells by the run's seed.
- Run: the cell's faults are injected when the test's call begins, into the proxies
  its fixtures already created, and into a proxy the scenario creates later as soon as
  ``chaos.proxy`` creates it (``pytest_chaos_after_proxy``). They are healed when the
  call ends, before the fixtures' teardown. ``chaos.explored`` is the cell.
- Report: the cell rides in the test's ``chaos_record`` (``"explore"``), which reaches
  the reporting plugin from every xdist worker; the matrix is built there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from typing import Any

import pytest

from pytest_chaos.errors import ConfigurationError
from pytest_chaos.explore._cells import Explored, ExplorePlan, parse_explore

ARGNAME = "_chaos_explored"
MARKER_HELP = (
    "chaos_explore(targets=[...] or {name: 'tcp'|'http'|'service'}, faults=None, pairs=False, "
    "max_items=50): run the test once per target x fault plus a baseline (exploration)"
)
_BUDGET_KEY = pytest.StashKey["tuple[str, float] | None"]()
_CLOCK_KEY = pytest.StashKey["list[float]"]()
_ACTIVE: dict[int, _CellRun] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--chaos-explore-budget`` and its ini key."""
    group = parser.getgroup("chaos", "chaos engineering (pytest-chaos)")
    group.addoption(
        "--chaos-explore-budget",
        dest="chaos_explore_budget",
        default=None,
        metavar="N|Ts",
        help="bound exploration: N items (baselines always run, the other cells chosen by "
        "the seed) or a time such as 90s or 5m (cells in seeded order; those left when it "
        "is spent are skipped); 'all' lifts a budget the ini file sets. ini: "
        "chaos_explore_budget",
    )
    parser.addini("chaos_explore_budget", "bound exploration: N items or a time (90s)")


def parse_budget(raw: str) -> tuple[str, float] | None:
    """``"40"`` -> ``("items", 40)``, ``"90s"`` -> ``("seconds", 90.0)``, ``"all"`` -> None."""
    from pytest_chaos.experiments import UnitError, parse_duration

    text = raw.strip()
    if text.lower() in ("", "all"):
        return None
    if text.isdigit() and int(text) > 0:
        return "items", float(int(text))
    try:
        seconds = parse_duration(text)
    except UnitError:
        seconds = 0.0
    if seconds <= 0:
        raise pytest.UsageError(
            f"--chaos-explore-budget={raw!r} is neither a number of items nor a time; "
            "write e.g. --chaos-explore-budget=40 (items), --chaos-explore-budget=90s or "
            "--chaos-explore-budget=all (no bound)"
        )
    return "seconds", seconds


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; a bad budget stops the run here."""
    config.addinivalue_line("markers", MARKER_HELP)
    raw = config.getoption("chaos_explore_budget", None) or str(
        config.getini("chaos_explore_budget") or ""
    )
    config.stash[_BUDGET_KEY] = parse_budget(str(raw))
    config.stash[_CLOCK_KEY] = []


def _seed(config: pytest.Config) -> int:
    from pytest_chaos.plugin import get_session

    return int(get_session(config).seed)


def _extra_faults(config: pytest.Config, target: str, kind: str) -> list[str]:
    out: list[str] = []
    for result in config.hook.pytest_chaos_explore_faults(config=config, target=target, kind=kind):
        out.extend(result or ())
    return out


def _check_radius(definition: pytest.Function, plan: ExplorePlan) -> None:
    """A chaos marker beside chaos_explore must allow its targets (and two faults at once
    for pairs): said at collection, not by every cell's refused injection."""
    from pytest_chaos.experiment import BlastRadius

    mark = definition.get_closest_marker("chaos")
    raw = mark.kwargs.get("blast_radius") if mark is not None else None
    if isinstance(raw, list | tuple) and all(isinstance(t, str) for t in raw):
        raw = BlastRadius(targets=tuple(raw))
    if not isinstance(raw, BlastRadius):
        return  # no marker, or a malformed one: the chaos marker's own check says so
    outside = [t for t in plan.targets if not raw.allows(t)]
    if outside:
        raise ConfigurationError(
            f"{definition.nodeid}: @pytest.mark.chaos_explore targets {outside} are outside "
            f"@pytest.mark.chaos's blast radius {raw.describe()}, so their cells could only "
            f"be refused. Add them to blast_radius=..., or drop the chaos marker (the radius "
            f"is then the targets)."
        )
    limit = raw.max_concurrent_faults
    pairs = any(len(cell.faults) > 1 for cell in plan.cells)
    if pairs and limit is not None and limit < 2:
        raise ConfigurationError(
            f"{definition.nodeid}: @pytest.mark.chaos_explore(pairs=True) injects two faults "
            f"at once, but the blast radius has max_concurrent_faults={limit}. Raise it to 2 "
            f"or more, or drop pairs=True."
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per cell of a ``chaos_explore`` test; a bad marker fails collection."""
    definition = metafunc.definition
    mark = definition.get_closest_marker("chaos_explore")
    if mark is None:
        return
    config = metafunc.config
    try:
        if "chaos" not in metafunc.fixturenames:
            raise ConfigurationError(
                f"{definition.nodeid}: @pytest.mark.chaos_explore needs the chaos fixture; "
                "add a `chaos` argument to the test (the scenario's proxies come from it)."
            )
        plan = parse_explore(
            mark.args,
            mark.kwargs,
            where=definition.nodeid,
            seed=_seed(config),
            extra=lambda target, kind: _extra_faults(config, target, kind),
        )
        _check_radius(definition, plan)
    except ConfigurationError as exc:
        raise pytest.Collector.CollectError(str(exc)) from None
    # without a chaos marker the blast radius is the targets
    marks = (
        []
        if definition.get_closest_marker("chaos") is not None
        else [pytest.mark.chaos(blast_radius=list(plan.targets))]
    )
    metafunc.fixturenames.append(ARGNAME)
    metafunc.parametrize(ARGNAME, [pytest.param(c, id=c.id, marks=marks) for c in plan.cells])


def explored_of(item: pytest.Item) -> Explored | None:
    """The cell of an exploration item, or ``None``."""
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get(ARGNAME) if callspec is not None else None
    return value if isinstance(value, Explored) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply ``--chaos-explore-budget`` after the user's own selection (-k, -m)."""
    budget = config.stash[_BUDGET_KEY]
    if budget is None:
        return
    kind, amount = budget
    rng = random.Random(f"{_seed(config)}:explore-budget")
    cells = [i for i, item in enumerate(items) if (c := explored_of(item)) and not c.baseline]
    baselines = sum(1 for item in items if (c := explored_of(item)) and c.baseline)
    if kind == "items":
        room = max(0, int(amount) - baselines)
        keep = set(rng.sample(cells, min(room, len(cells))))
        dropped = [items[i] for i in cells if i not in keep]
        if dropped:
            gone = {id(item) for item in dropped}
            items[:] = [item for item in items if id(item) not in gone]
            config.hook.pytest_deselected(items=dropped)
        return
    # seconds: run each test's cells in seeded order (items stay next to their test's,
    # so module fixtures are not set up twice): the cells a spent budget skips are random
    groups: dict[str, list[int]] = {}
    for i in cells:
        groups.setdefault(items[i].nodeid.partition("[")[0], []).append(i)
    for slots in groups.values():
        order = list(slots)
        rng.shuffle(order)
        moved = [items[i] for i in order]
        for slot, item in zip(slots, moved, strict=True):
            items[slot] = item


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip the cells left when a time budget is spent (the baseline always runs)."""
    explored = explored_of(item)
    budget = item.config.stash[_BUDGET_KEY]
    if explored is None or budget is None or budget[0] != "seconds":
        return
    clock = item.config.stash[_CLOCK_KEY]
    if not clock:
        clock.append(time.monotonic())
    spent = time.monotonic() - clock[0]
    if not explored.baseline and spent > budget[1]:
        pytest.skip(
            f"chaos explore: the budget of {budget[1]:g}s is spent ({spent:.0f}s); "
            "this cell did not run (--chaos-explore-budget)"
        )


class _CellRun:
    """The faults of one exploration item while its call runs."""

    def __init__(self, chaos: Any, explored: Explored) -> None:
        self.chaos = chaos
        self.explored = explored
        self.pending = dict(explored.specs)
        self.faults: list[Any] = []
        self.started = time.monotonic()

    def inject(self, proxy: Any) -> None:
        spec = self.pending.pop(proxy.name, None)
        if spec is None:
            return
        try:
            self.faults.append(spec.inject(proxy))
        except ConfigurationError as exc:
            if not spec.service:
                raise
            # The proxy's method says why (an address-only proxy, a bad argument); add
            # the cell, and for a proxy with no server the exploration's own way out
            way_out = (
                f" Or declare the target {proxy.name!r}: 'tcp' (its catalogue acts on no server)."
                if proxy.service is None
                else ""
            )
            raise ConfigurationError(
                f"chaos_explore cell {self.explored.id!r}: {exc}{way_out}"
            ) from exc

    def start(self) -> None:
        self.started = time.monotonic()
        self.chaos.timeline.record(
            "note", "explore", target=self.explored.target or "", cell=self.explored.id
        )
        for proxy in list(self.chaos.proxies.values()):
            self.inject(proxy)

    def missed_crashes(self) -> list[str]:
        """The crash faults whose server had not crashed when the scenario returned
        (healing cancels them: the cell would have tested nothing), or whose crash
        failed, each as a phrase for the error."""
        crashed: set[str] = set()
        failed: dict[str, str] = {}
        for event in self.chaos.timeline.events:
            if event.kind == "note" and event.name == "crash":
                crashed.add(event.target)
            elif event.kind == "note" and event.name == "crash_restart_failed":
                failed[event.target] = str(event.data.get("error", ""))
        missed = []
        elapsed = time.monotonic() - self.started
        for fault in self.faults:
            if fault.kind != "crash":
                continue
            if fault.target in failed:
                missed.append(
                    f"the crash of {fault.target!r} failed ({failed[fault.target]}), so the "
                    "scenario did not run through a crash and a restart; see the service's "
                    "output below"
                )
            elif fault.target not in crashed:
                missed.append(
                    f"the scenario returned {elapsed:.2f}s after its fault started, before "
                    f"the crash of {fault.target!r} at {fault.attributes.get('after', 0):g}s, "
                    "so nothing crashed. Keep the scenario running past the crash (e.g. "
                    "traffic while chaos.active_faults holds the crash), or crash sooner: "
                    "crash:0.1s"
                )
        return missed

    def finish(self) -> None:
        for fault in reversed(self.faults):
            fault.heal(by="test")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Inject the cell's faults around the scenario; heal them when it returns."""
    explored = explored_of(item)
    chaos = getattr(item, "funcargs", {}).get("chaos") if explored is not None else None
    if explored is None or chaos is None:
        return (yield)
    chaos.explored = explored
    run = _CellRun(chaos, explored)
    _ACTIVE[id(chaos)] = run
    missed: list[str] = []
    try:
        run.start()
        result = yield
        missed = run.missed_crashes()
    finally:
        _ACTIVE.pop(id(chaos), None)
        run.finish()
    if missed:
        raise ConfigurationError(f"chaos_explore cell {explored.id!r}: {'; '.join(missed)}.")
    if run.pending:
        names = sorted(run.pending)
        raise ConfigurationError(
            f"chaos_explore: target(s) {names} of cell {explored.id!r} were never created; "
            f"this test created {sorted(chaos.proxies)}. Create them with "
            f"chaos.proxy({names[0]!r}, upstream=...) in the test or its fixtures, or "
            "remove them from targets=."
        )
    return result


def pytest_chaos_after_proxy(chaos: Any, proxy: Any) -> None:
    """A proxy the scenario creates while its cell runs gets the cell's fault at once."""
    run = _ACTIVE.get(id(chaos))
    if run is not None:
        run.inject(proxy)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Put the cell into the test's ``chaos_record`` (after the core plugin built it)."""
    report = yield
    explored = explored_of(item)
    record = getattr(report, "chaos_record", None)
    if explored is not None and isinstance(record, dict):
        record["explore"] = explored.to_json()
    return report
