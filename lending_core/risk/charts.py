"""PNG charts of the monitoring figures for a risk meeting: vintage curves, overdue buckets,
approvals over time. Drawn with matplotlib's Agg canvas on a Figure of its own (no pyplot, no
global state, so charts can be drawn in threads). Labels are English: the machines carry no CJK
font, and matplotlib's bundled DejaVu Sans is always there.

Each chart takes the dict of ``monitoring.figures_of`` and returns PNG bytes of WIDTH × HEIGHT.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Callable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

WIDTH, HEIGHT, DPI = 960, 540, 100
BUCKET_COLOURS = {"current": "#4c9f70", "1-30": "#e3c567", "31-60": "#e59f4a", "61-90": "#d9603b", "90+": "#a4243b"}


def _figure() -> Figure:
    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)  # no tight bbox: the size stays WIDTH × HEIGHT
    return buffer.getvalue()


def _percent(value: str | None) -> float:
    """A rate string as a percentage for plotting (display only: the figures stay exact)."""
    return float(Decimal(value) * 100) if value is not None else float("nan")


def _scope(figures: dict) -> str:
    bank = f"bank {figures['bank_id']}" if figures.get("bank_id") else "all banks"
    return f"{figures.get('product') or 'all products'}, {bank}, as of {figures['as_of']}"


def _empty(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#666666")


def vintage_chart(figures: dict) -> bytes:
    """Share of each cohort's disbursed principal more than 30 (left) and 90 (right) days past
    due, by month on book."""
    figure = _figure()
    axes = figure.subplots(1, 2, sharex=True)
    curves = [c for c in figures["vintage"] if c["points"]]
    for ax, threshold in zip(axes, (30, 90)):
        for curve in curves:
            points = curve["points"]
            ax.plot([p["month_on_book"] for p in points], [_percent(p[f"dpd{threshold}_rate"]) for p in points], marker="o", markersize=3, label=curve["cohort"])
        ax.set_title(f"{threshold}+ days past due")
        ax.set_xlabel("month on book")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
        ax.grid(alpha=0.3)
        if not curves:
            _empty(ax, "no cohort has a full month on book yet")
    axes[0].set_ylabel("share of disbursed principal")
    if curves:
        axes[1].legend(title="cohort", fontsize=7, title_fontsize=8, loc="upper left", ncol=2)
    figure.suptitle(f"Vintage curves — {_scope(figures)}", fontsize=11)
    figure.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.12, wspace=0.2)
    return _png(figure)


def overdue_chart(figures: dict) -> bytes:
    """Active loans by days-past-due bucket: share of outstanding principal and of loans."""
    figure = _figure()
    axes = figure.subplots()
    buckets = figures["overdue"]["buckets"]
    names = [b["bucket"] for b in buckets]
    positions = range(len(names))
    width = 0.38
    colours = [BUCKET_COLOURS[n] for n in names]
    principal = [_percent(b["principal_rate"]) for b in buckets]
    count = [_percent(b["count_rate"]) for b in buckets]
    axes.bar([p - width / 2 for p in positions], principal, width, color=colours, label="share of outstanding principal")
    axes.bar([p + width / 2 for p in positions], count, width, color=colours, alpha=0.45, hatch="//", label="share of loans")
    for p, value in zip(positions, principal):
        if value == value:  # not NaN
            axes.annotate(f"{value:.2f}%", (p - width / 2, value), ha="center", va="bottom", fontsize=8)
    axes.set_xticks(list(positions), [f"{n} DPD" if n != "current" else n for n in names])
    axes.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    axes.set_ylabel("share of the active book")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8)
    overdue = figures["overdue"]
    if not overdue["loans"]:
        _empty(axes, "no active loans")
    figure.suptitle(
        f"Overdue by bucket — {_scope(figures)}\n{overdue['loans']} active loans, "
        f"outstanding {overdue['outstanding_fen'] / 100:,.2f} yuan, default (90+) rate {_percent(figures['default']['principal_rate']):.2f}%",
        fontsize=10,
    )
    figure.subplots_adjust(left=0.08, right=0.98, top=0.85, bottom=0.1)
    return _png(figure)


def approvals_chart(figures: dict) -> bytes:
    """Applications by month (approved, rejected, in review) and the approval rate."""
    figure = _figure()
    axes = figure.subplots()
    months = figures["approvals"]["by_month"]
    labels = [m["month"] for m in months]
    positions = list(range(len(labels)))
    approved = [m["approved"] for m in months]
    rejected = [m["rejected"] for m in months]
    in_review = [m["in_review"] for m in months]
    axes.bar(positions, approved, color="#4c9f70", label="approved")
    axes.bar(positions, rejected, bottom=approved, color="#a4243b", label="rejected")
    axes.bar(positions, in_review, bottom=[a + r for a, r in zip(approved, rejected)], color="#bbbbbb", label="in review")
    axes.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
    axes.set_ylabel("applications")
    axes.grid(axis="y", alpha=0.3)
    rates = axes.twinx()
    rates.plot(positions, [_percent(m["approval_rate"]) for m in months], color="#1f4e79", marker="o", label="approval rate")
    rates.set_ylim(0, 100)
    rates.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    rates.set_ylabel("approval rate (approved / decided)")
    handles = axes.get_legend_handles_labels()
    more = rates.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper left")
    figure.suptitle(f"Approvals over time — {_scope(figures)}", fontsize=11)
    figure.subplots_adjust(left=0.08, right=0.9, top=0.9, bottom=0.18)
    return _png(figure)


CHARTS: dict[str, Callable[[dict], bytes]] = {"vintage": vintage_chart, "overdue": overdue_chart, "approvals": approvals_chart}
