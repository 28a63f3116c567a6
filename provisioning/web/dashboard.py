"""Reads for the home page: totals, missing rows by week of sign-up, health, latest events.

Nothing here writes. The counts are the expensive part (a pass over the whole of auth.users,
shared with `selectors.status_counts`), so they are computed once and kept in Django's cache for
`COUNTS_TTL` seconds; the page says when they were computed. Without a CACHES setting,
Django's default LocMemCache is per server process: each gunicorn worker counts on its
own, at most once a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field

from django.core.cache import cache
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from provisioning import diagnostics
from provisioning.engine import selectors
from provisioning.models import AuditEvent

logger = logging.getLogger(__name__)

#: How long the counts may be reused, in seconds.
COUNTS_TTL = 60
COUNTS_CACHE_KEY = "provisioning:home:counts:v2"
HEALTH_CACHE_KEY = "provisioning:home:health:v1"
#: The chart shows at most this many weeks, ending with the latest sign-up.
CHART_WEEKS = 52
TABLES = selectors.TABLE_NAMES


@dataclass(frozen=True)
class WeekFigures:
    """One week of sign-ups (weeks start on Monday, in the server's time zone)."""

    week: dt.date
    signups: int
    missing_any: int
    missing: dict[str, int]


@dataclass(frozen=True)
class HomeFigures:
    """Totals over live sign-ups (not soft-deleted, not anonymous), like the list's default."""

    auth_users: int
    missing: dict[str, int]
    missing_any: int
    #: Users who cannot be provisioned, each once (`selectors.blocked_summary`).
    cannot_provision: int
    #: The missing rows they lack (a user blocked in three tables: three rows).
    cannot_provision_rows: int
    #: Users blocked, by "table: reason" (a user may be under several tables).
    cannot_provision_reasons: dict[str, int]
    cannot_provision_sample: list[dict]
    weeks: list[WeekFigures]
    #: Missing users who signed up before the charted weeks (or have no sign-up date).
    missing_outside_chart: int
    #: pg_class.reltuples for auth.users: every row, deleted and anonymous included.
    estimated_auth_rows: int
    computed_at: dt.datetime
    took_seconds: float
    #: When the missing counts come from the provisioning ledger: the time it was caught up
    #: ("as of"); None when they were counted live.
    as_of: dt.datetime | None = None

    @property
    def fully_provisioned(self) -> int:
        return self.auth_users - self.missing_any

    @property
    def fully_provisioned_percent(self) -> float | None:
        if not self.auth_users:
            return None
        return 100.0 * self.fully_provisioned / self.auth_users


@dataclass(frozen=True)
class Health:
    """What the diagnostics say, reduced to what the home page shows."""

    available: bool
    ok: bool | None = None
    headline: str = ""
    items: list[str] = field(default_factory=list)
    url: str | None = None


def compute_figures() -> HomeFigures:
    """Count now, bypassing the cache: from the provisioning ledger where there is one
    (`selectors.ledger_counts_by_week`, as of its last catch-up), else live:
    `selectors.status_counts` grouped by week (one pass over auth.users) plus who cannot be
    provisioned (one more). The totals are the sums of the weekly
    counts, so they agree with the chart (and with `selectors.status_counts()`)."""
    started = time.monotonic()
    state = selectors.ledger_state()
    if state is not None:  # the provisioning ledger: milliseconds, as of its last catch-up
        by_week = selectors.ledger_counts_by_week(timezone.get_current_timezone_name())
    else:
        by_week = selectors.status_counts_by_week(timezone.get_current_timezone_name())
    signups = {week: live for week, (live, _, _) in by_week.items()}
    missing_any = {week: n for week, (_, _, n) in by_week.items()}
    missing = {table: {week: per_table[table] for week, (_, per_table, _) in by_week.items()} for table in TABLES}
    blocked = selectors.ledger_blocked_summary(sample=10) if state else selectors.blocked_summary(sample=10)

    dated = sorted(week for week in signups if week is not None)
    weeks: list[WeekFigures] = []
    if dated:
        last = dated[-1]
        first = max(dated[0], last - dt.timedelta(weeks=CHART_WEEKS - 1))
        week = first
        while week <= last:
            weeks.append(
                WeekFigures(
                    week=week,
                    signups=signups.get(week, 0),
                    missing_any=missing_any.get(week, 0),
                    missing={table: missing[table].get(week, 0) for table in TABLES},
                )
            )
            week += dt.timedelta(weeks=1)
    charted = sum(w.missing_any for w in weeks)
    return HomeFigures(
        auth_users=sum(signups.values()),
        missing={table: sum(missing[table].values()) for table in TABLES},
        missing_any=sum(missing_any.values()),
        cannot_provision=blocked.users,
        cannot_provision_rows=sum(blocked.rows.values()),
        cannot_provision_reasons=blocked.rows,
        cannot_provision_sample=blocked.sample,
        weeks=weeks,
        missing_outside_chart=sum(missing_any.values()) - charted,
        estimated_auth_rows=selectors.estimated_auth_users(),
        computed_at=timezone.now(),
        took_seconds=time.monotonic() - started,
        as_of=state.caught_up_at if state else None,
    )


def _counts_key() -> str:
    # Weeks start on Monday in the viewer's time zone: one cached copy per zone.
    return f"{COUNTS_CACHE_KEY}:{timezone.get_current_timezone_name()}"


def home_figures(*, recount: bool = False) -> HomeFigures:
    """The counts, from the cache when they are younger than COUNTS_TTL seconds."""
    if not recount:
        figures = cache.get(_counts_key())
        if isinstance(figures, HomeFigures):
            return figures
    figures = compute_figures()
    cache.set(_counts_key(), figures, COUNTS_TTL)
    return figures


def provisioning_health() -> Health:
    """The health page's own report, reduced to its headline and the checks that are not
    ok (so the panel and the page say the same), cached like the counts. A failure to run
    the diagnostics gives Health(available=False): the home page must render regardless."""
    cached = cache.get(HEALTH_CACHE_KEY)
    if isinstance(cached, Health):
        return cached
    try:
        report = diagnostics.summary()
    except Exception:  # the home page must render whatever diagnostics do
        logger.warning("diagnostics summary unavailable", exc_info=True)
        return Health(available=False)
    health = Health(
        available=True,
        ok=report.status == diagnostics.OK,
        headline=report.headline,
        items=[f"{item['name']}: {item['status']}" for item in report.attention][:10],
        url=reverse("provisioning-health"),
    )
    cache.set(HEALTH_CACHE_KEY, health, COUNTS_TTL)
    return health


def latest_audit_events(limit: int = 10) -> list[AuditEvent]:
    """The newest audit events (created_at is indexed: no cache needed)."""
    return list(AuditEvent.objects.order_by("-created_at", "-id")[:limit])


def list_url(status: str | None = None) -> str:
    """The auth user list, filtered by the provisioning status filter's value."""
    try:
        url = reverse("admin:provisioning_authuser_changelist")
    except NoReverseMatch:  # pragma: no cover - the admin is always installed
        return ""
    return f"{url}?status={status}" if status else url
