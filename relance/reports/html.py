"""The message report as one self-contained HTML page (A-05): a table and inline SVG charts.

Nothing is fetched from the network: styles are inline, charts are SVG drawn here, and there
is no script. Each bar carries a ``<title>``, which browsers show as a tooltip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from jinja2 import Environment
from markupsafe import Markup

from relance.reports.messages import MessageMonth
from relance.reports.months import months_between

__all__ = ["render_page"]

BLUE, ORANGE, GREEN, GREY = "#2f6db5", "#e8833a", "#3a9a5b", "#8a8f98"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


@dataclass
class _Totals:
    label: str
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    purchases: int = 0
    revenue: float = 0.0

    def rate(self, part: int) -> float:
        return part / self.delivered if self.delivered else 0.0


def _label(row: MessageMonth) -> str:
    return f"{row.scenario} / {row.journey} / {row.message} ({row.channel})"


def _per_message(rows: Sequence[MessageMonth]) -> list[_Totals]:
    totals: dict[str, _Totals] = {}
    for row in rows:  # report rows (message x month), a few hundred at most
        t = totals.setdefault(_label(row), _Totals(_label(row)))
        t.sent += row.sent
        t.delivered += row.delivered
        t.opened += row.opened
        t.clicked += row.clicked
        t.purchases += row.purchases
        t.revenue += row.revenue
    return sorted(totals.values(), key=lambda t: t.label)


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT}>{body}</svg>'
    )


def _nice_step(value: float, ticks: int = 4) -> float:
    """A round step (1, 2 or 5 x 10^n, at least 1: counts are whole) so that ``ticks`` steps cover it."""
    wanted = max(value / ticks, 1.0)
    magnitude = 1.0
    while magnitude * 10 <= wanted:
        magnitude *= 10
    return next(magnitude * f for f in (1, 2, 5, 10) if magnitude * f >= wanted)


def sends_chart(rows: Sequence[MessageMonth], since: str, until: str) -> str:
    """Delivered and bounced stacked, per month of the period (empty months shown)."""
    months = months_between(since, until)
    delivered = dict.fromkeys(months, 0)
    bounced = dict.fromkeys(months, 0)
    for row in rows:
        delivered[row.month] = delivered.get(row.month, 0) + row.delivered
        bounced[row.month] = bounced.get(row.month, 0) + row.bounced
    step = _nice_step(max((delivered[m] + bounced[m] for m in months), default=0))
    top = step * 4
    left, plot_h, bar_w, gap = 60, 220, 34, 14
    width = max(360, left + len(months) * (bar_w + gap) + 20)
    height = plot_h + 70
    parts = [f'<text x="{left}" y="16" font-weight="600">Sends per month</text>']
    base = plot_h + 30
    for i in range(5):
        value = step * i
        y = base - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e5e8"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{GREY}">{value:,.0f}</text>'
        )
    for i, month in enumerate(months):
        x = left + gap / 2 + i * (bar_w + gap)
        ok, lost = delivered[month], bounced[month]
        h_ok, h_lost = plot_h * ok / top, plot_h * lost / top
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - h_ok:.1f}" width="{bar_w}" height="{h_ok:.1f}" '
            f'fill="{BLUE}"><title>{month}: {ok:,} delivered</title></rect>'
        )
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - h_ok - h_lost:.1f}" width="{bar_w}" '
            f'height="{h_lost:.1f}" fill="{ORANGE}"><title>{month}: {lost:,} bounced</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{base + 16}" text-anchor="middle" fill="{GREY}" '
            f'font-size="10">{month}</text>'
        )
    legend_y = height - 12
    parts.append(f'<rect x="{left}" y="{legend_y - 9}" width="10" height="10" fill="{BLUE}"/>')
    parts.append(f'<text x="{left + 14}" y="{legend_y}">delivered</text>')
    parts.append(f'<rect x="{left + 90}" y="{legend_y - 9}" width="10" height="10" fill="{ORANGE}"/>')
    parts.append(f'<text x="{left + 104}" y="{legend_y}">bounced</text>')
    return _svg(width, height, "Sends per month: delivered and bounced", "".join(parts))


def _horizontal(
    title: str, totals: list[_Totals], series: list[tuple[str, str, list[float], list[str]]], top: float
) -> str:
    """Horizontal bars, one group per message, one bar per series (name, colour, values, tips)."""
    label_w, plot_w, bar_h = 330, 360, 14
    group_h = bar_h * len(series) + 12
    height = 40 + group_h * max(1, len(totals)) + 24
    width = label_w + plot_w + 280  # room for the value written after the longest bar
    parts = [f'<text x="10" y="16" font-weight="600">{escape(title)}</text>']
    for i, t in enumerate(totals):
        y0 = 34 + i * group_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y0 + group_h / 2:.1f}" text-anchor="end">{escape(t.label)}</text>'
        )
        for j, (_name, colour, values, tips) in enumerate(series):
            w = plot_w * values[i] / top if top else 0
            y = y0 + j * bar_h
            parts.append(
                f'<rect class="bar" x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{colour}"><title>{escape(tips[i])}</title></rect>'
            )
            parts.append(
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" fill="{GREY}">{escape(tips[i])}</text>'
            )
    legend_y = height - 10
    for j, (name, colour, _, _) in enumerate(series):
        x = label_w + j * 110
        parts.append(f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{legend_y}">{escape(name)}</text>')
    return _svg(width, height, title, "".join(parts))


def rates_chart(totals: list[_Totals]) -> str:
    opens = [t.rate(t.opened) for t in totals]
    clicks = [t.rate(t.clicked) for t in totals]
    return _horizontal(
        "Open and click rates per message",
        totals,
        [
            ("open rate", BLUE, opens, [f"open {v * 100:.1f} %" for v in opens]),
            ("click rate", GREEN, clicks, [f"click {v * 100:.1f} %" for v in clicks]),
        ],
        top=max([*opens, *clicks, 0.0]) or 1.0,
    )


def revenue_chart(totals: list[_Totals]) -> str:
    revenue = [t.revenue for t in totals]
    tips = [
        f"{t.revenue:,.2f} ({t.purchases:,} purchase{'' if t.purchases == 1 else 's'}, "
        f"RPM {t.revenue / t.sent * 1000 if t.sent else 0:,.2f})"
        for t in totals
    ]
    return _horizontal(
        "Attributed revenue per message",
        totals,
        [("revenue", GREEN, revenue, tips)],
        top=max([*revenue, 0.0]) or 1.0,
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}
p.meta{color:#555}
table{border-collapse:collapse;margin:1rem 0 2rem;font-size:.85rem}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e3e5e8;white-space:nowrap}
th{text-align:left;background:#f4f5f7}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:2rem}
svg.chart{max-width:100%;height:auto;background:#fff}
</style>
</head><body>
<h1>{{ title }}</h1>
<p class="meta">Messages sent from {{ since }} to {{ until }} (months in UTC){% if scenario %}, scenario
{{ scenario }}{% endif %}. Revenue: purchases up to {{ window_days }} days after a message, credited to the
contact's last message before the purchase (last touch). Generated {{ generated_at }}.</p>
<div class="charts">
{% for chart in charts %}<figure>{{ chart }}</figure>
{% endfor %}</div>
<table id="report">
<thead><tr><th>month</th><th>scenario</th><th>journey</th><th>message</th><th>channel</th>
<th class="n">sent</th><th class="n">delivered</th><th class="n">open rate</th><th class="n">click rate</th>
<th class="n">unsubscribe rate</th><th class="n">purchases</th><th class="n">revenue</th>
<th class="n">RPM</th></tr></thead>
<tbody>
{% for r in rows %}<tr><td>{{ r.month }}</td><td>{{ r.scenario }}</td><td>{{ r.journey }}</td>
<td>{{ r.message }}</td><td>{{ r.channel }}</td><td class="n">{{ "{:,}".format(r.sent) }}</td>
<td class="n">{{ "{:,}".format(r.delivered) }}</td><td class="n">{{ percent(r.open_rate) }}</td>
<td class="n">{{ percent(r.click_rate) }}</td><td class="n">{{ percent(r.unsubscribe_rate) }}</td>
<td class="n">{{ "{:,}".format(r.purchases) }}</td><td class="n">{{ "{:,.2f}".format(r.revenue) }}</td>
<td class="n">{{ "{:,.2f}".format(r.rpm) }}</td></tr>
{% else %}<tr><td colspan="13">No message was sent in that period.</td></tr>
{% endfor %}</tbody>
</table>
</body></html>
"""


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def render_page(
    rows: Sequence[MessageMonth],
    *,
    since: str,
    until: str,
    scenario: str | None,
    window_days: int,
    generated_at: datetime,
) -> str:
    totals = _per_message(rows)
    charts = [sends_chart(rows, since, until)]
    if totals:
        charts += [rates_chart(totals), revenue_chart(totals)]
    template = Environment(autoescape=True).from_string(_PAGE)
    return template.render(
        title="Message report",
        since=since,
        until=until,
        scenario=scenario,
        window_days=window_days,
        generated_at=generated_at.isoformat(timespec="seconds"),
        charts=[Markup(chart) for chart in charts],  # built above, every text escaped
        rows=rows,
        percent=_percent,
    )
