"""The chart of one ``compare`` check: both latency distributions, as SVG.

Pure string building like the timeline chart (``_chart.py``): an Allure attachment that
renders in any browser. The control's and the experiment's histograms share bins (from
the check's ``measured["histogram"]``), side by side in each bin; dashed lines mark each
group's p50 and p99; the header carries the verdict, the p-values and the effect size.

Elements carry classes (``chaos-compare``, ``chaos-compare-bar control|experiment``,
``chaos-compare-quantile``) so tests and stylesheets can find them.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from pytest_chaos.reporting._model import CheckVerdict
from pytest_chaos.reporting._terminal import format_number

__all__ = ["compare_svg", "has_distributions"]

_WIDTH = 720
_HEIGHT = 320
_LEFT = 56
_RIGHT = 16
_TOP = 64
_BOTTOM = 46
_COLORS = {"control": "#3182bd", "experiment": "#e6550d"}


def has_distributions(check: CheckVerdict) -> bool:
    """Whether ``check`` is a compare check that carries a histogram to draw."""
    hist = check.measured.get("histogram")
    return (
        check.name == "compare"
        and isinstance(hist, Mapping)
        and len(hist.get("edges") or []) >= 2
        and isinstance(hist.get("control"), list)
        and isinstance(hist.get("experiment"), list)
    )


def _ms(seconds: float) -> str:
    return f"{format_number(seconds * 1000)} ms" if seconds < 1 else f"{seconds:.2f} s"


def _number(values: Mapping[str, Any], key: str) -> float | None:
    value = values.get(key)
    return float(value) if isinstance(value, int | float) else None


def compare_svg(check: CheckVerdict) -> str:
    """The two latency distributions of a compare check as a standalone SVG document."""
    m = check.measured
    hist = m["histogram"]
    edges = [float(e) for e in hist["edges"]]
    groups = {"control": list(hist["control"]), "experiment": list(hist["experiment"])}
    bins = len(edges) - 1
    low, high = edges[0], edges[-1]
    span = (high - low) or 1e-9
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    top = max(max(groups["control"], default=0), max(groups["experiment"], default=0), 1)

    def x(value: float) -> float:
        return _LEFT + plot_w * (min(max(value, low), high) - low) / span

    def y(count: float) -> float:
        return _TOP + plot_h - plot_h * count / top

    verdict = "PASS" if check.passed else ("ABORTED" if m.get("aborted") else "FAIL")
    color = "#31a354" if check.passed else "#d62728"
    p_lat = _number(m, "latency_p_value")
    p_err = _number(m, "error_p_value")
    delta = _number(m, "cliffs_delta")
    stats = (
        f"latency: Mann-Whitney p={format_number(p_lat) if p_lat is not None else '?'}, "
        f"Cliff's delta {format_number(delta) if delta is not None else '?'} "
        f"({m.get('effect', '?')}); errors {m.get('errors_control', '?')}/"
        f"{m.get('calls_control', '?')} vs {m.get('errors_experiment', '?')}/"
        f"{m.get('calls_experiment', '?')}, p={format_number(p_err) if p_err is not None else '?'}"
    )
    on = f" on {escape(check.target)}" if check.target else ""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chaos-compare" width="{_WIDTH}" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}" font-family="sans-serif" '
        'font-size="12">',
        f"<title>compare: control vs experiment{on}</title>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{_HEIGHT}" fill="#ffffff"/>',
        f'<text x="8" y="19" font-size="14" font-weight="bold">compare</text>'
        f'<text x="84" y="19" fill="{color}" font-weight="bold">{verdict}</text>'
        f'<text x="150" y="19" fill="#555">{escape(_allowed(check.allowed))}</text>',
        f'<text x="8" y="38" fill="#333" font-size="11">{escape(stats)}</text>',
    ]
    legend_x = _LEFT
    for name, fill in _COLORS.items():
        p50, p99 = _number(m, f"{name}_p50"), _number(m, f"{name}_p99")
        label = f"{name}: p50 {_ms(p50) if p50 is not None else '?'}, "
        label += f"p99 {_ms(p99) if p99 is not None else '?'}"
        out.append(
            f'<rect x="{legend_x}" y="46" width="10" height="10" fill="{fill}"/>'
            f'<text x="{legend_x + 14}" y="55" fill="#333" font-size="11">{escape(label)}</text>'
        )
        legend_x += 300
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#bbb"/>'
    )
    slot = plot_w / bins
    bar_w = max(slot / 2 - 1, 0.8)
    for i in range(bins):
        for j, (name, counts) in enumerate(groups.items()):
            count = counts[i] if i < len(counts) else 0
            if not count:
                continue
            bx = _LEFT + slot * i + 0.5 + j * (bar_w + 0.5)
            by = y(count)
            tip = f"{name}: {count} calls in {_ms(edges[i])} - {_ms(edges[i + 1])}"
            out.append(
                f'<rect class="chaos-compare-bar {name}" x="{bx:.1f}" y="{by:.1f}" '
                f'width="{bar_w:.1f}" height="{_TOP + plot_h - by:.1f}" '
                f'fill="{_COLORS[name]}" fill-opacity="0.85"><title>{escape(tip)}</title></rect>'
            )
    for name, fill in _COLORS.items():
        for q in ("p50", "p99"):
            value = _number(m, f"{name}_{q}")
            if value is None:
                continue
            qx = x(value)
            dash = "5,3" if q == "p50" else "2,2"
            out.append(
                f'<g class="chaos-compare-quantile"><title>{name} {q}: {_ms(value)}</title>'
                f'<line x1="{qx:.1f}" y1="{_TOP}" x2="{qx:.1f}" y2="{_TOP + plot_h}" '
                f'stroke="{fill}" stroke-width="1.5" stroke-dasharray="{dash}"/>'
                f'<text x="{qx + 2:.1f}" y="{_TOP + 10 + (0 if name == "control" else 12)}" '
                f'fill="{fill}" font-size="10">{q}</text></g>'
            )
    for k in range(5):
        count = top * k / 4
        gy = y(count)
        out.append(
            f'<text x="{_LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" fill="#666" '
            f'font-size="10">{format_number(round(count, 1))}</text>'
        )
    for k in range(5):
        value = low + span * k / 4
        tx = x(value)
        out.append(
            f'<line x1="{tx:.1f}" y1="{_TOP + plot_h}" x2="{tx:.1f}" y2="{_TOP + plot_h + 5}" '
            f'stroke="#333"/><text x="{tx:.1f}" y="{_TOP + plot_h + 17}" text-anchor="middle" '
            f'fill="#333" font-size="10">{_ms(value)}</text>'
        )
    out.append(
        f'<text x="{_LEFT + plot_w / 2:.1f}" y="{_HEIGHT - 8}" text-anchor="middle" '
        'fill="#555">latency of each probe call (count per bin)</text>'
    )
    out.append("</svg>")
    return "\n".join(out)


def _allowed(allowed: Mapping[str, Any]) -> str:
    shown = [f"{k} {v}" for k, v in allowed.items() if k != "alpha" and not k.startswith("abort_")]
    alpha = allowed.get("alpha")
    text = "budget " + ", ".join(shown) if shown else "no budget"
    return text + (f" (alpha {format_number(alpha)})" if alpha is not None else "")
