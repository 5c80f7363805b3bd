"""Charts for the pages, as inline SVG strings: matplotlib draws the bigger ones (bars by week,
lines by day) and a few lines of our own draw the small sparklines beside a table row.

matplotlib is imported when the first chart is drawn, so the app starts without it, and only
its object API is used (``Figure``, no pyplot state). Each chart has a ``<title>`` and an
``aria-label`` saying what it shows, and the same data gives the same bytes: no date in the
metadata, a fixed hash salt, and ids prefixed with the chart's own name so that several charts
on one page never share an id.
"""

import io
import math
import re
import threading
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

# Colour-blind-safe (Okabe-Ito), in the order the series are given.
COLOURS = ("#0072B2", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#56B4E9")
WIDTH, HEIGHT = 7.2, 2.6  # inches; the page scales the SVG to its column
# rcParams are process-wide: two threads drawing at once must not see each other's settings.
_DRAWING = threading.Lock()
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|xlink:href="#|href="#)([^)"]+)')


def _figure() -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.tick_params(labelsize=8, colors="#444")
    return figure, axes


def _svg(figure: Any, *, name: str, label: str) -> str:
    import matplotlib

    out = io.StringIO()
    with (
        _DRAWING,
        matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "none", "font.size": 9}),
    ):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _accessible(out.getvalue(), name=name, label=label)


def _accessible(svg: str, *, name: str, label: str) -> str:
    """The bare ``<svg>`` element, labelled, with its ids made unique to the chart."""
    svg = svg[svg.index("<svg") :]
    svg = _ID.sub(lambda m: f'id="{name}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", svg)
    # Its style sheet would apply to the whole page once inline: keep it to this chart.
    svg = svg.replace('<style type="text/css">*{', f'<style type="text/css">#{name} *{{')
    text = escape(label)
    head_end = svg.index(">") + 1
    head = svg[: head_end - 1] + f' role="img" aria-label="{text}" class="chart" id="{name}">'
    return head + f"<title>{text}</title>" + svg[head_end:]


def _no_data(axes: Any) -> None:
    axes.text(
        0.5, 0.5, "nothing yet", transform=axes.transAxes, ha="center", color="#888", fontsize=10
    )


def stacked_bars(
    *,
    name: str,
    label: str,
    periods: Sequence[str],
    series: Mapping[str, Sequence[float]],
    ylabel: str = "",
) -> str:
    """Bars per period (say, weeks), each split by series (say, reasons), as an SVG string."""
    figure, axes = _figure()
    positions = list(range(len(periods)))
    bottom = [0.0] * len(periods)
    for colour, (key, values) in zip(COLOURS, series.items(), strict=False):
        axes.bar(positions, values, bottom=bottom, label=key, color=colour, width=0.7)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_xticks(positions, periods)
    step = max(1, math.ceil(len(periods) / 12))
    for n, tick in enumerate(axes.get_xticklabels()):
        tick.set_visible(n % step == 0)
    axes.yaxis.get_major_locator().set_params(integer=True)
    if ylabel:
        axes.set_ylabel(ylabel, fontsize=8)
    if not any(bottom):
        _no_data(axes)
    if len(series) > 1:
        axes.legend(fontsize=8, frameon=False, ncols=len(series), loc="upper left")
    return _svg(figure, name=name, label=label)


def lines(
    *,
    name: str,
    label: str,
    periods: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    ylabel: str = "",
    percent: bool = False,
    integer: bool = False,
) -> str:
    """One line per series over periods (say, days); None leaves a gap in its line."""
    figure, axes = _figure()
    positions = list(range(len(periods)))
    drawn = False
    for colour, (key, values) in zip(COLOURS, series.items(), strict=False):
        ys = [float("nan") if v is None else v for v in values]
        drawn = drawn or any(v is not None for v in values)
        axes.plot(positions, ys, label=key, color=colour, marker="o", markersize=2.5, linewidth=1.5)
    step = max(1, len(periods) // 8)
    axes.set_xticks(positions[::step], [periods[n] for n in positions[::step]])
    if percent:
        axes.set_ylim(0, 105)
        axes.yaxis.set_major_formatter("{x:.0f}%")
    else:
        axes.set_ylim(bottom=0)
    if integer:
        axes.yaxis.get_major_locator().set_params(integer=True)
    if ylabel:
        axes.set_ylabel(ylabel, fontsize=8)
    if not drawn:
        _no_data(axes)
    if len(series) > 1:
        axes.legend(fontsize=8, frameon=False, ncols=len(series), loc="upper left")
    return _svg(figure, name=name, label=label)


def sparkline(values: Sequence[int], *, label: str, width: int = 96, height: int = 22) -> str:
    """A tiny bar per value, for a table cell; hand-drawn (a figure per row would be slow)."""
    top = max(values, default=0) or 1
    bar = width / max(len(values), 1)
    rects = []
    for n, value in enumerate(values):
        h = 0 if value == 0 else max(1.5, (height - 2) * value / top)
        rects.append(
            f'<rect x="{n * bar + 0.5:.1f}" y="{height - h - 1:.1f}" width="{max(bar - 1, 1):.1f}"'
            f' height="{h:.1f}" fill="{COLOURS[0]}"><title>{value}</title></rect>'
        )
    baseline = f'<line x1="0" y1="{height - 0.5}" x2="{width}" y2="{height - 0.5}" stroke="#ccc"/>'
    text = escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" '
        f'aria-label="{text}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{text}</title>{baseline}{"".join(rects)}</svg>'
    )
