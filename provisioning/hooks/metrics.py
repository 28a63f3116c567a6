"""`GET /metrics` for the team's monitoring, in Prometheus' text format (prometheus-client).

The gauges are computed at most once per METRICS_CACHE_SECONDS (default 30) and served from
Django's cache in between, so a scraper, however eager, cannot load the database. The
figures are the dashboard's own: the provisioning ledger's counts (`selectors.ledger_status_counts`,
live while there is no ledger), the doctor's checks, the audit
log's webhook events, the watchdog's state and the jobs table.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from provisioning import diagnostics
from provisioning.engine import selectors
from provisioning.hooks import watchdog
from provisioning.models import AuditEvent, LedgerEntry, ProvisioningJob

CACHE_KEY = "eloity:metrics:v1"
STATUS_VALUE = {diagnostics.OK: 0, diagnostics.WARNING: 1, diagnostics.PROBLEM: 2}


def enabled() -> bool:
    return bool(settings.METRICS_TOKEN or settings.METRICS_ALLOWED_IPS)


def exposition() -> bytes:
    """The metrics text, from the cache when younger than METRICS_CACHE_SECONDS."""
    text = cache.get(CACHE_KEY)
    if text is None:
        text = _compute()
        cache.set(CACHE_KEY, text, settings.METRICS_CACHE_SECONDS)
    return text


def _compute() -> bytes:
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    counts = selectors.ledger_status_counts(sample=0)
    gauge(
        "eloity_counts_from_ledger",
        "1 when the eloity_missing_* and eloity_cannot_provision_* figures come from the provisioning ledger, "
        "0 when they were counted live (no ledger yet).",
    ).set(int(counts.as_of is not None))
    gauge(
        "eloity_ledger_caught_up_timestamp_seconds",
        "When the provisioning ledger was last caught up (0: no ledger; the figures are live).",
    ).set(counts.as_of.timestamp() if counts.as_of else 0)
    gauge("eloity_auth_users", "Live sign-ups (not soft-deleted, not anonymous).").set(counts.auth_users)
    missing = gauge("eloity_missing_rows", "Live sign-ups missing a row, per app table.", ("table",))
    for table, n in counts.missing.items():
        missing.labels(table).set(n)
    gauge("eloity_missing_any", "Live sign-ups missing a row in any app table.").set(counts.missing_any)
    gauge(
        "eloity_cannot_provision_users",
        "Live sign-ups missing a row provisioning cannot write, each counted once.",
    ).set(counts.blocked_users)
    gauge(
        "eloity_cannot_provision_rows",
        "Missing rows provisioning cannot write (a sign-up blocked in three tables counts three times).",
    ).set(sum(counts.blocked.values()))
    gauge(
        "eloity_missing_awaiting_confirmation",
        "Of eloity_missing_any, unconfirmed sign-ups where provisioning waits for confirmation (expected; 0 "
        "without such a gate).",
    ).set(counts.awaiting_confirmation or 0)

    if counts.as_of is not None:  # the ledger holds every user missing a row, with the time of sign-up
        oldest = LedgerEntry.objects.aggregate(oldest=Min("created_at"))["oldest"]
    else:
        oldest = selectors.users_missing().aggregate(oldest=Min("created_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0
    gauge(
        "eloity_oldest_unprovisioned_signup_age_seconds",
        "Age of the oldest live sign-up still missing a row (0 when none).",
    ).set(age)

    checks = gauge("eloity_doctor_check_status", "The doctor's checks: 0 ok, 1 warning, 2 problem.", ("check",))
    for check in diagnostics.run_checks().checks:
        checks.labels(check.name).set(STATUS_VALUE[check.status])

    deliveries = gauge("eloity_webhook_deliveries", "Sign-up webhook deliveries audited, by outcome.", ("outcome",))
    audited = (
        AuditEvent.objects.filter(action=AuditEvent.Action.SIGNUP_WEBHOOK)
        .values("outcome")
        .annotate(n=Count("id"))
        .values_list("outcome", "n")
    )
    for outcome in (AuditEvent.Outcome.SUCCEEDED, AuditEvent.Outcome.PARTIAL, AuditEvent.Outcome.DENIED):
        deliveries.labels(outcome).set(0)
    for outcome, n in audited:
        deliveries.labels(outcome).set(n)

    state = watchdog.status()
    gauge("eloity_watchdog_last_run_timestamp_seconds", "When the watchdog last ran (0: never).").set(
        state.last_run_at.timestamp() if state.last_run_at else 0
    )
    gauge("eloity_watchdog_late_signups", "Late sign-ups the watchdog's last run found.").set(state.late)
    gauge("eloity_watchdog_open_incidents", "Watchdog incidents still open (0 or 1).").set(int(bool(state.incident)))

    jobs = gauge("eloity_jobs", "Background provisioning jobs, by state.", ("state",))
    by_state = dict(ProvisioningJob.objects.values("state").annotate(n=Count("id")).values_list("state", "n"))
    for state_name, _ in ProvisioningJob.State.choices:
        jobs.labels(state_name).set(by_state.get(state_name, 0))
    return generate_latest(registry)
