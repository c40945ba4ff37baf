"""The timeline chart: fault windows shaded over probe latency and errors, as SVG.

Pure string building, no dependency: the chart is an Allure attachment and must render
in any browser. Layout from top to bottom: one lane per fault (a bar from inject to
heal), the probe plot (each probe call is a dot at its start time and latency; failed
calls are red crosses) with every fault window shaded across it, one lane per check (a
bar over the interval the check ran, green or red), and the time axis. Aborts are
dashed vertical lines over everything. A test that ran a schedule (``chaos.schedule``, a
YAML game day) gets a lane on top: each step's planned start (an open diamond) and actual
start (a dot), joined by a line.

Elements carry classes (``chaos-fault``, ``chaos-window``, ``chaos-sample``,
``chaos-check``, ``chaos-abort``, ``chaos-step``) so tests and stylesheets can find them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from typing import Any

from pytest_chaos.reporting._model import ChaosTestResult
from pytest_chaos.reporting._terminal import format_number

__all__ = ["timeline_svg"]

_WIDTH = 960
_LEFT = 170
_RIGHT = 24
_LANE = 22
_PLOT_H = 200
_PALETTE = ("#e6550d", "#756bb1", "#3182bd", "#d6616b", "#8c6d31", "#31a354", "#636363")
_PROBE_COLORS = ("#1f77b4", "#17becf", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_MAX_SAMPLES = 1500
_TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


def _step(span: float, ticks: int = 8) -> float:
    for step in _TICK_STEPS:
        if span / step <= ticks:
            return step
    return _TICK_STEPS[-1] * math.ceil(span / (_TICK_STEPS[-1] * ticks))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _bar_label(text: str, x0: float, x1: float, y: float, right: float) -> str:
    """The label of a bar: inside it if it fits, else beside it, in a readable colour."""
    width = len(text) * 6.2 + 8  # about 6 px a character at 11 px sans-serif
    if width <= x1 - x0:
        where, color = f'x="{x0 + 4:.1f}"', "#fff"
    elif x1 + width <= right:
        where, color = f'x="{x1 + 4:.1f}"', "#333"
    else:
        where, color = f'x="{x0 - 4:.1f}" text-anchor="end"', "#333"
    return f'<text {where} y="{y}" fill="{color}" font-size="11">{escape(text)}</text>'


def _seconds(value: float) -> str:
    if value < 1:
        return f"{format_number(value * 1000)} ms"
    return f"{value:.2f} s"


def _thin(samples: list[dict[str, Any]], x: Callable[[float], float]) -> list[dict[str, Any]]:
    """At most a few samples per pixel column and probe: fastest, slowest, one error.

    A long steady state makes thousands of probe calls; drawing each would make the
    attachment megabytes without showing more. The extremes keep every spike visible.
    """
    if len(samples) <= _MAX_SAMPLES:
        return samples
    columns: dict[str, dict[str, dict[str, Any]]] = {}
    for sample in samples:
        key = f"{int(x(float(sample.get('t', 0.0))))}:{sample.get('label', '')}"
        column = columns.setdefault(key, {})
        latency = float(sample.get("latency", 0.0))
        if not sample.get("ok"):
            column.setdefault("error", sample)
            continue
        low, high = column.get("low"), column.get("high")
        if low is None or latency < float(low.get("latency", 0.0)):
            column["low"] = sample
        if high is None or latency > float(high.get("latency", 0.0)):
            column["high"] = sample
    kept = {id(s): s for column in columns.values() for s in column.values()}
    return sorted(kept.values(), key=lambda s: float(s.get("t", 0.0)))


def _schedule_steps(result: ChaosTestResult) -> list[dict[str, Any]]:
    events = (result.record.get("timeline") or {}).get("events", [])
    return [
        dict(e.get("data") or {})
        for e in events
        if e.get("kind") == "note" and e.get("name") == "schedule_step"
    ]


def timeline_svg(result: ChaosTestResult) -> str:
    """The chart of one test's timeline as a standalone SVG document."""
    faults, checks, samples = result.faults, result.checks, result.samples
    span = max(result.span, float(result.record.get("duration") or 0.0), 0.001) * 1.02
    plot_w = _WIDTH - _LEFT - _RIGHT
    steps = _schedule_steps(result)
    title_h = 30
    step_top = title_h
    fault_top = title_h + (_LANE + 4 if steps else 0)
    plot_top = fault_top + max(len(faults), 1) * _LANE + 10
    check_top = plot_top + _PLOT_H + 10
    axis_y = check_top + max(len(checks), 1) * _LANE + 6
    height = axis_y + 40
    colors: dict[str, str] = {}
    for fault in faults:
        colors.setdefault(fault.kind, _PALETTE[len(colors) % len(_PALETTE)])

    def x(t: float) -> float:
        return _LEFT + plot_w * min(max(t, 0.0), span) / span

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chaos-timeline" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" '
        'font-size="12">',
        f"<title>chaos timeline of {escape(result.nodeid)}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="19" font-size="14" font-weight="bold">chaos timeline</text>'
        f'<text x="130" y="19" fill="#555">{escape(result.nodeid)} '
        f"({escape(result.outcome)})</text>",
    ]

    if steps:
        out.append(
            f'<text x="8" y="{step_top + 15}">schedule (planned \u25c7 actual \u25cf)</text>'
        )
    for data in steps:
        planned, actual = float(data.get("planned") or 0.0), float(data.get("actual") or 0.0)
        px, ax, cy = x(planned), x(actual), step_top + _LANE / 2 + 2
        tip = (
            f"{data.get('step')}: planned {planned:.3f}s, actual {actual:.3f}s "
            f"(late {float(data.get('late_ms') or 0.0):.1f} ms)"
        )
        out.append(
            f'<g class="chaos-step"><title>{escape(tip)}</title>'
            f'<line x1="{px:.1f}" y1="{cy:.1f}" x2="{ax:.1f}" y2="{cy:.1f}" stroke="#555"/>'
            f'<path class="chaos-step-planned" d="M{px:.1f},{cy - 5:.1f}l5,5l-5,5l-5,-5z" '
            'fill="none" stroke="#555"/>'
            f'<circle class="chaos-step-actual" cx="{ax:.1f}" cy="{cy:.1f}" r="3" '
            'fill="#333"/></g>'
        )

    # fault windows shaded across the probe plot, drawn first so dots sit on top
    for fault in faults:
        end = fault.end if fault.end is not None else span
        x0, x1 = x(fault.start), x(end)
        out.append(
            f'<rect class="chaos-window" x="{x0:.1f}" y="{plot_top}" '
            f'width="{max(x1 - x0, 1.5):.1f}" height="{_PLOT_H}" '
            f'fill="{colors[fault.kind]}" fill-opacity="0.13"/>'
        )

    # fault lanes
    if not faults:
        out.append(f'<text x="8" y="{fault_top + 15}" fill="#888">no faults injected</text>')
    for i, fault in enumerate(faults):
        y = fault_top + i * _LANE
        end = fault.end if fault.end is not None else span
        x0, x1 = x(fault.start), x(end)
        label = f"{fault.kind} {fault.target}".strip()
        attrs = " ".join(f"{k}={format_number(v)}" for k, v in fault.attributes.items())
        healed = (
            "never healed"
            if fault.duration is None
            else f"{fault.duration:.2f}s, healed by {fault.healed_by}"
        )
        out.append(
            f'<g class="chaos-fault"><title>{escape(label)} {escape(attrs)}: '
            f"{fault.start:.2f}s, {escape(healed)}</title>"
            f'<text x="8" y="{y + 15}">{escape(label[:24])}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1.5):.1f}" height="{_LANE - 6}" '
            f'fill="{colors[fault.kind]}" rx="3"/>'
            + _bar_label(_short(attrs, 60), x0, x1, y + 15, _WIDTH - _RIGHT)
            + "</g>"
        )

    # probe plot
    max_latency = max((float(s.get("latency", 0.0)) for s in samples), default=0.0)
    y_top = max(max_latency * 1.1, 0.001)
    out.append(
        f'<rect x="{_LEFT}" y="{plot_top}" width="{plot_w}" height="{_PLOT_H}" '
        'fill="none" stroke="#bbb"/>'
    )
    out.append(
        f'<text x="8" y="{plot_top + 15}" fill="#333">probe latency</text>'
        f'<text x="8" y="{plot_top + 31}" fill="#888" font-size="11">'
        f"{len(samples)} calls, "
        f"{sum(1 for s in samples if not s.get('ok'))} failed</text>"
    )
    drawn = _thin(samples, x)
    legend_y = plot_top + 46
    if len(drawn) < len(samples):
        out.append(
            f'<text x="8" y="{legend_y}" fill="#888" font-size="11">'
            f"{len(drawn)} drawn (extremes per pixel)</text>"
        )
        legend_y += 15
    probe_colors: dict[str, str] = {}
    for sample in samples:
        label = str(sample.get("label", ""))
        if label not in probe_colors:
            probe_colors[label] = _PROBE_COLORS[min(len(probe_colors), len(_PROBE_COLORS) - 1)]
    if len(probe_colors) > 1:
        # one colour per probe (a guard's liveness calls next to a steady state's)
        for n, (label, color) in enumerate(probe_colors.items()):
            if n == len(_PROBE_COLORS) - 1 and len(probe_colors) > len(_PROBE_COLORS):
                label = f"{len(probe_colors) - n} more probes"
            out.append(
                f'<circle cx="12" cy="{legend_y - 4 + 14 * n}" r="3" fill="{color}"/>'
                f'<text x="20" y="{legend_y + 14 * n}" fill="#555" font-size="10">'
                f"{escape(_short(label, 21))}</text>"
            )
            if n == len(_PROBE_COLORS) - 1:
                break
    for k in range(5):
        value = y_top * k / 4
        gy = plot_top + _PLOT_H - _PLOT_H * k / 4
        out.append(
            f'<line x1="{_LEFT - 4}" y1="{gy:.1f}" x2="{_LEFT + plot_w}" y2="{gy:.1f}" '
            f'stroke="#eee"/><text x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" '
            f'fill="#666" font-size="10">{_seconds(value)}</text>'
        )
    for sample in drawn:
        t, latency = float(sample.get("t", 0.0)), float(sample.get("latency", 0.0))
        cx = x(t)
        cy = plot_top + _PLOT_H - _PLOT_H * min(latency, y_top) / y_top
        tip = f"{escape(str(sample.get('label', '')))} at {t:.3f}s: {_seconds(latency)}"
        if sample.get("ok"):
            out.append(
                f'<circle class="chaos-sample ok" cx="{cx:.1f}" cy="{cy:.1f}" r="2.6" '
                f'fill="{probe_colors.get(str(sample.get("label", "")), _PROBE_COLORS[0])}">'
                f"<title>{tip}</title></circle>"
            )
        else:
            out.append(
                f'<path class="chaos-sample error" d="M{cx - 3.5:.1f},{cy - 3.5:.1f}l7,7'
                f'm0,-7l-7,7" stroke="#d62728" stroke-width="2">'
                f"<title>{tip} (failed)</title></path>"
            )

    # check lanes
    if not checks:
        out.append(f'<text x="8" y="{check_top + 15}" fill="#888">no checks</text>')
    for i, check in enumerate(checks):
        y = check_top + i * _LANE
        start = max(check.t - check.duration, 0.0)
        x0, x1 = x(start), x(check.t)
        color = "#31a354" if check.passed else "#d62728"
        verdict = "PASS" if check.passed else "FAIL"
        out.append(
            f'<g class="chaos-check {"pass" if check.passed else "fail"}">'
            f"<title>{escape(check.name)} {verdict}: {escape(check.message)}</title>"
            f'<text x="8" y="{y + 15}">{escape(check.name[:18])} {verdict}</text>'
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 2):.1f}" height="{_LANE - 6}" '
            f'fill="{color}" fill-opacity="0.85" rx="3"/></g>'
        )

    # aborts across everything
    for abort in result.aborts:
        ax = x(abort.t)
        out.append(
            f'<g class="chaos-abort"><title>abort by {escape(abort.source)}: '
            f"{escape(abort.reason)}</title>"
            f'<line x1="{ax:.1f}" y1="{fault_top}" x2="{ax:.1f}" y2="{axis_y}" '
            'stroke="#ff7f0e" stroke-width="2" stroke-dasharray="6,4"/>'
            # the label goes on the side of the line with room for it
            + (
                f'<text x="{ax + 4:.1f}" text-anchor="start"'
                if ax < _LEFT + plot_w * 0.6
                else f'<text x="{ax - 4:.1f}" text-anchor="end"'
            )
            + f' y="{plot_top + 12}" fill="#ff7f0e" font-weight="bold">'
            f"abort: {escape(_short(abort.reason, 50))}</text></g>"
        )

    # time axis
    out.append(
        f'<line x1="{_LEFT}" y1="{axis_y}" x2="{_LEFT + plot_w}" y2="{axis_y}" stroke="#333"/>'
    )
    step = _step(span)
    k = 0
    while k * step <= span + 1e-9:
        tx = x(k * step)
        out.append(
            f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 5}" stroke="#333"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 18}" text-anchor="middle" fill="#333" '
            f'font-size="10">{format_number(k * step)}s</text>'
        )
        k += 1
    out.append(
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{axis_y + 34}" text-anchor="middle" '
        'fill="#555">seconds since the experiment started</text>'
    )
    out.append("</svg>")
    return "\n".join(out)
