"""The watchdog: live sign-ups older than a grace period that still miss rows, whatever
the cause (a broken trigger, a webhook that never arrived), noticed within a minute.

Run every minute (cron, or `make run`'s loop). Each run reads only sign-ups younger than
the window; it alerts once per incident, not once per run: the incident is the audit log's
last watchdog event ("watchdog_alert" opens one, "watchdog_resolved" closes it), so every
process and machine agrees on it. With `heal`, it provisions the late sign-ups (audited,
actor `watchdog`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.request
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone

from provisioning.actors import Actor
from provisioning.audit.recording import record_event
from provisioning.engine import confirmation, selectors, services
from provisioning.models import AuditEvent, WatchdogState
from provisioning.spec import TABLE_NAMES

logger = logging.getLogger(__name__)
Action = AuditEvent.Action
WATCHDOG_ACTOR = "watchdog"
#: How many late users an alert names.
NAMED = 10


@dataclass
class Finding:
    late: list[uuid.UUID] = field(default_factory=list)
    oldest: dt.datetime | None = None
    missing: dict[str, int] = field(default_factory=dict)
    cause: str = ""
    #: Where provisioning waits for confirmation: late sign-ups still unconfirmed, which
    #: are expected to lack rows and so are not late (None where there is no such gate).
    awaiting_confirmation: int | None = None

    @property
    def count(self) -> int:
        return len(self.late)


def find_late(*, grace: int, window: int, limit: int = 10_000) -> Finding:
    """Live sign-ups created between `window` and `grace` seconds ago that miss a row.

    `created_at` has no index on hosted Supabase: this reads auth.users once per run
    (a sequential scan filtered on created_at), then probes the app tables only for the
    recent sign-ups it kept."""
    now = timezone.now()
    recent = selectors.population().filter(
        created_at__lte=now - dt.timedelta(seconds=grace), created_at__gte=now - dt.timedelta(seconds=window)
    )
    lacking = recent.filter(selectors.missing_any_q())
    finding = Finding()
    gate = confirmation.gate()
    if gate is not None:
        finding.awaiting_confirmation = lacking.filter(gate.awaiting_q()).count()
        lacking = lacking.exclude(gate.awaiting_q())
    late = selectors.with_status(lacking).order_by("created_at")[:limit]
    for user in late:
        finding.late.append(user.pk)
        finding.oldest = finding.oldest or user.created_at
        for table in TABLE_NAMES:
            if not getattr(user, selectors.status_field(table)):
                finding.missing[table] = finding.missing.get(table, 0) + 1
    return finding


def likely_cause() -> str:
    """The doctor's first problem among the sign-up checks, in one line (or "")."""
    from provisioning import diagnostics

    for check in diagnostics.run_checks().checks:
        if check.status == diagnostics.PROBLEM:
            return f"{check.name}: {check.found}"
    return ""


def open_incident() -> AuditEvent | None:
    """The alert of the incident still open, or None."""
    last = (
        AuditEvent.objects.filter(action__in=[Action.WATCHDOG_ALERT, Action.WATCHDOG_RESOLVED])
        .order_by("-created_at", "-id")
        .first()
    )
    return last if last is not None and last.action == Action.WATCHDOG_ALERT else None


@dataclass
class RunResult:
    finding: Finding
    alerted: bool = False
    resolved: bool = False
    healed: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def run(*, grace: int = 60, window: int = 86_400, heal: bool = False, notify=None) -> RunResult:
    """One watchdog run: find late sign-ups, alert once per incident, heal if asked, and
    close the incident when the gap is gone. `notify(text)` sends an alert (default: the
    configured email and webhook, else the log)."""
    notify = notify or send_alert
    finding = find_late(grace=grace, window=window)
    remember(finding, grace=grace, window=window)
    result = RunResult(finding)
    actor = Actor(username=WATCHDOG_ACTOR, channel=AuditEvent.Channel.CLI)
    incident = open_incident()
    if finding.count and incident is None:
        finding.cause = likely_cause()
        text = alert_text(finding, grace=grace)
        record_event(
            actor=actor,
            action=Action.WATCHDOG_ALERT,
            outcome=AuditEvent.Outcome.FAILED,
            tables=list(finding.missing),
            target_user_ids=finding.late[:200],
            detail={"late": finding.count, "missing": finding.missing, "cause": finding.cause, "grace": grace},
        )
        notify(text)
        result.alerted = True
        result.messages.append(text)
    if finding.count and heal:
        healed = services.provision_users(actor=actor, user_ids=finding.late)
        result.healed = healed.created
        finding = find_late(grace=grace, window=window)
        result.finding = finding
        remember(finding, grace=grace, window=window)
    if not finding.count and (incident is not None or result.alerted):
        text = "Resolved: every live sign-up has its app rows again."
        record_event(
            actor=actor, action=Action.WATCHDOG_RESOLVED, outcome=AuditEvent.Outcome.SUCCEEDED, tables=(), detail={}
        )
        notify(text)
        result.resolved = True
        result.messages.append(text)
    return result


def remember(finding: Finding, *, grace: int, window: int = 86_400) -> None:
    """Record this run for the home and health pages and /metrics (one row, overwritten)."""
    WatchdogState.objects.update_or_create(
        id=1,
        defaults={
            "last_run_at": timezone.now(),
            "late": finding.count,
            "grace_seconds": grace,
            "window_seconds": window,
        },
    )


@dataclass(frozen=True)
class Status:
    last_run_at: dt.datetime | None
    late: int
    grace_seconds: int
    incident: AuditEvent | None
    window_seconds: int = 86_400

    @property
    def window_text(self) -> str:
        """The window as the pages say it: "the last 24 hours", "the last hour"."""
        return f"the last {duration_text(self.window_seconds)}"

    @property
    def stale(self) -> bool:
        """No run for over five minutes: cron (or make run's loop) is not running it."""
        return self.last_run_at is None or timezone.now() - self.last_run_at > dt.timedelta(minutes=5)


def status() -> Status:
    """The watchdog's last run and the incident still open, for the pages and /metrics."""
    state = WatchdogState.objects.filter(id=1).first()
    return Status(
        last_run_at=state.last_run_at if state else None,
        late=state.late if state else 0,
        grace_seconds=state.grace_seconds if state else 60,
        incident=open_incident(),
        window_seconds=state.window_seconds if state else 86_400,
    )


def duration_text(seconds: int) -> str:
    """`86400` as "24 hours", `3600` as "hour", `604800` as "7 days", `90` as "90 seconds"
    (days from three on: "48 hours" reads better than "2 days" for a look-back)."""
    for unit, size, least in (("day", 86_400, 3 * 86_400), ("hour", 3600, 3600), ("minute", 60, 60)):
        if seconds >= least and seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"


def alert_text(finding: Finding, *, grace: int) -> str:
    tables = ", ".join(f"{n} {t}" for t, n in finding.missing.items())
    names = selectors.person_labels(finding.late[:NAMED])
    who = ", ".join(names.get(str(i)) or str(i)[:8] for i in finding.late[:NAMED])
    more = f" and {finding.count - NAMED} more" if finding.count > NAMED else ""
    oldest = timezone.localtime(finding.oldest).strftime("%Y-%m-%d %H:%M %Z") if finding.oldest else "?"
    text = (
        f"{finding.count} sign-up(s) older than {grace} s still miss app rows ({tables}); the oldest signed up "
        f"{oldest}: {who}{more}."
    )
    if finding.cause:
        text += f" Most likely cause: {finding.cause}"
    return text


def send_alert(text: str, *, log_if_unsent: bool = True) -> bool:
    """Email WATCHDOG_EMAIL_TO and/or POST `{"text": ...}` to WATCHDOG_WEBHOOK_URL (Slack
    compatible); with neither, log it (the console, under `make run`). True when sent."""
    sent = False
    if settings.WATCHDOG_EMAIL_TO:
        send_mail("eloity-admin watchdog", text, None, settings.WATCHDOG_EMAIL_TO)
        sent = True
    if settings.WATCHDOG_WEBHOOK_URL:
        if not settings.WATCHDOG_WEBHOOK_URL.startswith(("https://", "http://")):
            raise ValueError("WATCHDOG_WEBHOOK_URL must be an http(s) URL")
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
            settings.WATCHDOG_WEBHOOK_URL,
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - http(s) only, checked above
            pass
        sent = True
    if not sent and log_if_unsent:
        logger.warning("watchdog: %s", text)
    return sent
