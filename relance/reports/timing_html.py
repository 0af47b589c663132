"""The timing analysis (A-03) as one self-contained HTML page: tables and inline SVG charts.

As the message report's page: styles inline, charts drawn here as SVG, no script, nothing
from the network. Per journey, one chart of conversions by reminder rank and one histogram of
the delays between the credited message and the purchase.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape

from jinja2 import Environment
from markupsafe import Markup

from relance.reports.html import BLUE, GREEN, GREY, ORANGE, _nice_step, _svg
from relance.reports.timing import BUCKET_NAMES, DelayRow, RankRow, TimingReport

__all__ = ["render_timing_page"]

PALETTE = [BLUE, ORANGE, GREEN, "#8e5bb5", "#c94f5d", "#2a9d9a", GREY]


def _axis(parts: list[str], left: int, width: int, base: float, plot_h: int, step: float) -> None:
    for i in range(5):
        y = base - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e5e8"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{GREY}">{step * i:,.0f}</text>'
        )


def rank_chart(journey: str, rows: list[RankRow]) -> str:
    """Conversions per rank, with each rank's conversion rate written above its bar."""
    ranked = [r for r in rows if r.rank is not None]
    step = _nice_step(max((r.conversions for r in ranked), default=0))
    top = step * 4
    left, plot_h, bar_w, gap = 50, 180, 60, 30
    width = max(320, left + len(ranked) * (bar_w + gap) + 20)
    height = plot_h + 80
    base = plot_h + 40
    title = f"Conversions by reminder rank: {journey}"
    parts = [f'<text x="10" y="16" font-weight="600">{escape(title)}</text>']
    _axis(parts, left, width, base, plot_h, step)
    for i, r in enumerate(ranked):
        x = left + gap / 2 + i * (bar_w + gap)
        h = plot_h * r.conversions / top
        rate = "–" if r.conversion_rate is None else f"{r.conversion_rate * 100:.1f} %"
        tip = (
            f"rank {r.rank} ({', '.join(r.messages)}): {r.conversions:,} conversion"
            f"{'' if r.conversions == 1 else 's'} of {r.sent:,} sends ({rate})"
        )
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" '
            f'fill="{GREEN}"><title>{escape(tip)}</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle">{escape(rate)}</text>'
        )
        label = f"{r.rank}. {', '.join(r.messages)}"
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{base + 16}" text-anchor="middle" fill="{GREY}" '
            f'font-size="10">{escape(label)}</text>'
        )
    return _svg(width, height, title, "".join(parts))


def delay_chart(journey: str, rows: list[DelayRow]) -> str:
    """One bar per delay bucket, stacked by credited message."""
    totals = [sum(r.buckets[b] for r in rows) for b in BUCKET_NAMES]
    step = _nice_step(max(totals, default=0))
    top = step * 4
    left, plot_h, bar_w, gap = 50, 180, 50, 16
    width = left + len(BUCKET_NAMES) * (bar_w + gap) + 20
    height = plot_h + 70 + 16 * ((len(rows) + 2) // 3)
    base = plot_h + 30
    title = f"Conversions by delay after the message: {journey}"
    parts = [f'<text x="10" y="16" font-weight="600">{escape(title)}</text>']
    _axis(parts, left, width, base, plot_h, step)
    for i, name in enumerate(BUCKET_NAMES):
        x = left + gap / 2 + i * (bar_w + gap)
        y = float(base)
        for j, r in enumerate(rows):
            n = r.buckets[name]
            h = plot_h * n / top
            tip = f"{r.message}, {name}: {n:,} conversion{'' if n == 1 else 's'}"
            parts.append(
                f'<rect class="bar" x="{x:.1f}" y="{y - h:.1f}" width="{bar_w}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(tip)}</title></rect>'
            )
            y -= h
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{base + 16}" text-anchor="middle" fill="{GREY}" '
            f'font-size="10">{escape(name)}</text>'
        )
    for j, r in enumerate(rows):
        lx, ly = left + (j % 3) * 150, base + 40 + 16 * (j // 3)
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{lx + 14}" y="{ly}">{escape(r.message)}</text>')
    return _svg(width, height, title, "".join(parts))


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
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
<p class="meta">Messages sent from {{ since }} to {{ until }} (months in UTC){% if scenario %},
scenario {{ scenario }}{% endif %}. Conversions: purchases up to {{ window_days }} days after a message,
credited to the contact's last message before the purchase (last touch). Ranks: {{ rank_by }}.
Generated {{ generated_at }}.</p>
{% for name, charts in journeys %}<h2>{{ name }}</h2>
<div class="charts">{% for chart in charts %}<figure>{{ chart }}</figure>{% endfor %}</div>
{% endfor %}
<h2>By reminder rank</h2>
<table id="by-rank">
<thead><tr><th>scenario</th><th>journey</th><th class="n">rank</th><th>messages</th><th class="n">sent</th>
<th class="n">runs</th><th class="n">conversions</th><th class="n">conversion rate</th>
<th class="n">cumulative</th><th class="n">cumulative rate</th><th class="n">marginal rate</th>
<th class="n">share</th></tr></thead>
<tbody>
{% for r in by_rank %}<tr><td>{{ r.scenario }}</td><td>{{ r.journey }}</td>
<td class="n">{{ "–" if r.rank is none else r.rank }}</td><td>{{ r.messages | join(", ") }}</td>
<td class="n">{{ "{:,}".format(r.sent) }}</td><td class="n">{{ "{:,}".format(r.runs) }}</td>
<td class="n">{{ "{:,}".format(r.conversions) }}</td><td class="n">{{ percent(r.conversion_rate) }}</td>
<td class="n">{{ "–" if r.cumulative_conversions is none else "{:,}".format(r.cumulative_conversions) }}</td>
<td class="n">{{ percent(r.cumulative_rate) }}</td><td class="n">{{ percent(r.marginal_rate) }}</td>
<td class="n">{{ percent(r.share) }}</td></tr>
{% else %}<tr><td colspan="12">No message was sent in that period.</td></tr>
{% endfor %}</tbody>
</table>
<h2>By delay after the credited message</h2>
<table id="by-delay">
<thead><tr><th>scenario</th><th>journey</th><th>message</th>{% for b in buckets %}<th class="n">{{ b }}</th>
{% endfor %}<th class="n">conversions</th></tr></thead>
<tbody>
{% for d in by_delay %}<tr><td>{{ d.scenario }}</td><td>{{ d.journey }}</td><td>{{ d.message }}</td>
{% for b in buckets %}<td class="n">{{ "{:,}".format(d.buckets[b]) }}</td>{% endfor %}
<td class="n">{{ "{:,}".format(d.conversions) }}</td></tr>
{% else %}<tr><td colspan="{{ buckets | length + 4 }}">No conversion in that period.</td></tr>
{% endfor %}</tbody>
</table>
</body></html>
"""


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f} %"


def render_timing_page(
    report: TimingReport,
    *,
    since: str,
    until: str,
    scenario: str | None,
    window_days: int,
    generated_at: datetime,
) -> str:
    ranks: dict[str, list[RankRow]] = defaultdict(list)
    for r in report.by_rank:
        ranks[f"{r.scenario} / {r.journey}"].append(r)
    delays: dict[str, list[DelayRow]] = defaultdict(list)
    for d in report.by_delay:
        delays[f"{d.scenario} / {d.journey}"].append(d)
    journeys = []
    for name in sorted(ranks.keys() | delays.keys()):
        charts = []
        if any(r.rank is not None for r in ranks[name]):
            charts.append(rank_chart(name, ranks[name]))
        if delays[name]:
            charts.append(delay_chart(name, delays[name]))
        journeys.append((name, [Markup(c) for c in charts]))  # built above, every text escaped
    template = Environment(autoescape=True).from_string(_PAGE)
    return template.render(
        title="Timing report",
        since=since,
        until=until,
        scenario=scenario,
        window_days=window_days,
        rank_by="order in the scenario files"
        if report.rank_by == "scenarios"
        else "order of each run's first sends",
        generated_at=generated_at.isoformat(timespec="seconds"),
        journeys=journeys,
        by_rank=report.by_rank,
        by_delay=report.by_delay,
        buckets=BUCKET_NAMES,
        percent=_percent,
    )
