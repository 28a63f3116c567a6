"""Template filters for the dashboard's small courtesies.

- `local_time`: a datetime in the staff member's time zone (their browser's, activated by
  `StaffTimeZoneMiddleware`; else the `TIME_ZONE` setting), `12 Aug 2026, 11:24 UTC`, with
  the UTC value on hover and in the machine-readable `datetime` attribute.
- `short_id`: the first 8 characters of a user id, the full id in title/aria-label and a
  "copy" button (provisioning/static/provisioning/eloity.js; no CDN).
- `status_icon`: ✓/✗ as the admin's own icons plus visually-hidden text ("present" /
  "missing"), so a screen reader says what a sighted person sees.
- `code_spans`: the diagnostics' plain text, where `code` is written in backticks (the CLI
  prints it so), with each span as `<code>`: a page never shows a literal backtick.
- `copy_button`: a "copy" button for a whole text (SQL to review), beside it.
"""

from __future__ import annotations

import datetime as dt
import decimal

from django import template
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.html import format_html, format_html_join

register = template.Library()

DISPLAY_FORMAT = "j M Y, H:i"


@register.filter
def local_time(value):
    """`<time datetime="...Z" title="... UTC">` in the current time zone; "—" for None."""
    if not isinstance(value, dt.datetime):
        return "—" if value in (None, "") else value
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    utc = value.astimezone(dt.UTC)
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{} UTC">{} <abbr class="tz" title="{}">{}</abbr></time>',
        utc.isoformat().replace("+00:00", "Z"),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
        format_date(local, DISPLAY_FORMAT),
        timezone.get_current_timezone_name(),
        local.strftime("%Z") or timezone.get_current_timezone_name(),
    )


@register.filter
def app_value(value):
    """A value of an app row as the pages show it: "—" for NULL, yes/no for a fact, times
    as everywhere else (`local_time`), anything else as text (escaped)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, decimal.Decimal) and value.is_finite():
        return f"{value.normalize():f}"  # 0E-8 reads as 0, 12.50000000 as 12.5
    return local_time(value) if isinstance(value, dt.datetime) else str(value)


@register.filter
def short_id(value):
    """The first 8 characters of an id, with the full id copyable."""
    if value in (None, ""):
        return "—"
    full = str(value)
    return format_html(
        '<span class="short-id"><code title="{0}">{1}</code>'
        '<button type="button" class="copy-id" data-copy="{0}" aria-label="Copy the full id {0}" title="Copy {0}">'
        '<span class="copy-id-text">copy</span></button></span>',
        full,
        full[:8],
    )


def status_icon_html(present: bool | None):
    """The ✓/✗ icon with screen-reader text; the admin's unknown icon for None."""
    if present is None:
        icon, text = "icon-unknown.svg", "unknown"
    elif present:
        icon, text = "icon-yes.svg", "present"
    else:
        icon, text = "icon-no.svg", "missing"
    return format_html(
        '<span class="status-{}"><img src="{}" alt="" width="13" height="13">'
        '<span class="visually-hidden">{}</span></span>',
        text,
        static(f"admin/img/{icon}"),
        text,
    )


@register.filter
def code_spans(value):
    """Text with each `span` in backticks as <code>span</code>, the rest escaped; an unpaired
    backtick is dropped. Anything but a string passes through as it is."""
    if not isinstance(value, str):
        return value
    parts = value.split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: the last one opens nothing
        parts[-2:] = [parts[-2] + parts[-1]]
    return format_html_join(
        "", "{}", ((format_html("<code>{}</code>", part) if i % 2 else part,) for i, part in enumerate(parts))
    )


@register.filter
def copy_button(value, label="SQL"):
    """A button that copies `value` (provisioning/static/provisioning/eloity.js)."""
    return format_html(
        '<button type="button" class="copy-id copy-sql" data-copy="{0}" aria-label="Copy the {1}" title="Copy the {1}">'
        '<span class="copy-id-text">copy</span></button>',
        value,
        label,
    )


@register.filter
def status_icon(value):
    return status_icon_html(None if value is None else bool(value))


@register.filter
def percent(value, digits=1):
    """A float as "97.5 %"; "—" for None."""
    if value is None:
        return "—"
    return f"{value:.{int(digits)}f} %"


@register.filter
def in_minutes(value):
    """A timedelta as "15 minutes" (at least one); "" for anything else."""
    if not isinstance(value, dt.timedelta):
        return ""
    minutes = max(1, round(value.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


#: Lists of people longer than this are collapsed behind their count.
PEOPLE_SHOWN_OPEN = 10


def person_html(user_id, label: str | None):
    """A person on a page: their email or phone linked to their page, then the short id
    (the full one copyable). An id of no auth user shows the id alone."""
    url = reverse("admin:provisioning_authuser_change", args=[user_id])
    if label is None:
        return format_html('<a href="{}"><code>{}</code></a>', url, user_id)
    return format_html('<a href="{}">{}</a> {}', url, label, short_id(user_id))


@register.filter
def person_in(user_id, labels: dict):
    """`{{ item.user_id|person_in:people }}` with `people` from selectors.person_labels."""
    return person_html(user_id, (labels or {}).get(str(user_id)))


def people_html(user_ids: list, labels: dict, *, more: int = 0):
    """People as a list; more than PEOPLE_SHOWN_OPEN collapse behind "N users"."""
    items = format_html_join("", "<li>{}</li>", ((person_html(i, labels.get(str(i))),) for i in user_ids))
    tail = format_html("<li>… and {} more (see the CSV export)</li>", more) if more else ""
    listing = format_html('<ul class="people">{}{}</ul>', items, tail)
    total = len(user_ids) + more
    if total <= PEOPLE_SHOWN_OPEN:
        return listing
    return format_html("<details><summary>{} users</summary>{}</details>", total, listing)
