"""Server-side SVG charts: no CDN, no JavaScript, readable without colour.

Each week is drawn as an outlined bar (everyone who signed up that week) with a hatched
bar inside it (those still missing an app row), the missing count written above it, and
a <title> per week that screen readers and mouse users both get. The page also carries
the same figures as a table.
"""

from __future__ import annotations

from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from provisioning.web.dashboard import WeekFigures

WIDTH = 760
HEIGHT = 240
LEFT = 44
RIGHT = 12
TOP = 22
BOTTOM = 36


def _week_label(week) -> str:
    return format_date(week, "j M Y")


def week_description(week: WeekFigures) -> str:
    """The sentence a screen reader hears for one week's bar."""
    parts = ", ".join(f"{table} {n}" for table, n in week.missing.items() if n)
    detail = f" ({parts})" if parts else ""
    return (
        f"Week of {_week_label(week.week)}: {week.signups} sign-up{'s' if week.signups != 1 else ''}, "
        f"{week.missing_any} missing app rows{detail}"
    )


def missing_by_week_svg(weeks: list[WeekFigures]) -> SafeString:
    """An inline <svg> bar chart, one bar group per week (class "week-bar")."""
    if not weeks:
        return mark_safe("")
    top_value = max(max(w.signups for w in weeks), 1)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / len(weeks)
    bar_w = max(slot * 0.7, 2)
    label_every = max(1, round(len(weeks) / 8))
    worst = max(weeks, key=lambda w: w.missing_any)

    def y(value: int) -> float:
        return TOP + plot_h - plot_h * value / top_value

    bars = []
    for index, week in enumerate(weeks):
        x = LEFT + index * slot + (slot - bar_w) / 2
        missing_label = ""
        if week.missing_any:
            missing_label = format_html(
                '<text class="bar-value" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{x + bar_w / 2:.1f}",
                f"{y(week.missing_any) - 4:.1f}",
                week.missing_any,
            )
        axis_label = ""
        if index % label_every == 0:
            axis_label = format_html(
                '<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                f"{x + bar_w / 2:.1f}",
                HEIGHT - BOTTOM + 16,
                format_date(week.week, "j M"),
            )
        bars.append(
            format_html(
                '<g class="week-bar{}" data-week="{}" data-missing="{}" data-signups="{}">'
                "<title>{}</title>"
                '<rect class="bar-signups" x="{}" y="{}" width="{}" height="{}"/>'
                '<rect class="bar-missing" x="{}" y="{}" width="{}" height="{}" fill="url(#eloity-hatch)"/>'
                "{}{}</g>",
                " worst-week" if week is worst and week.missing_any else "",
                week.week.isoformat(),
                week.missing_any,
                week.signups,
                week_description(week),
                f"{x:.1f}",
                f"{y(week.signups):.1f}",
                f"{bar_w:.1f}",
                f"{plot_h * week.signups / top_value:.1f}",
                f"{x:.1f}",
                f"{y(week.missing_any):.1f}",
                f"{bar_w:.1f}",
                f"{plot_h * week.missing_any / top_value:.1f}",
                missing_label,
                axis_label,
            )
        )

    total_missing = sum(w.missing_any for w in weeks)
    description = (
        f"{len(weeks)} weeks from {_week_label(weeks[0].week)} to {_week_label(weeks[-1].week)}; "
        f"{total_missing} sign-ups in these weeks miss an app row."
    )
    if worst.missing_any:
        description += f" The most: {week_description(worst)}."
    gridlines = format_html_join(
        "",
        '<line class="grid" x1="{}" x2="{}" y1="{}" y2="{}"/><text class="axis-label" x="{}" y="{}" '
        'text-anchor="end">{}</text>',
        (
            (LEFT, WIDTH - RIGHT, f"{y(v):.1f}", f"{y(v):.1f}", LEFT - 6, f"{y(v) + 4:.1f}", v)
            for v in sorted({0, top_value // 2, top_value})
        ),
    )
    return format_html(
        '<svg class="eloity-chart" id="missing-by-week-chart" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-labelledby="missing-chart-title missing-chart-desc" xmlns="http://www.w3.org/2000/svg">'
        '<title id="missing-chart-title">Sign-ups missing app rows, by week of sign-up</title>'
        '<desc id="missing-chart-desc">{}</desc>'
        '<defs><pattern id="eloity-hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
        'patternTransform="rotate(45)"><rect class="hatch-bg" width="6" height="6"/>'
        '<line class="hatch-line" x1="0" y1="0" x2="0" y2="6"/></pattern></defs>'
        "{}{}"
        '<line class="axis" x1="{}" x2="{}" y1="{}" y2="{}"/>'
        "</svg>",
        WIDTH,
        HEIGHT,
        description,
        gridlines,
        mark_safe("".join(bars)),  # noqa: S308 - each part built with format_html
        LEFT,
        WIDTH - RIGHT,
        TOP + plot_h,
        TOP + plot_h,
    )
