"""One user's timeline: Supabase Auth's own events (auth.audit_log_entries) merged with the
dashboard's audit events about the user, newest first, in words a person reads.

Read straight from auth.audit_log_entries, which has no index on the user and a `json`
payload: the entries are found by the user id's text in the payload (no cast, so a payload
that is not an object, or not JSON at all on an old Auth, cannot fail the query), then
parsed here; what cannot be parsed is shown raw. Each page reads at most
`page * PAGE_SIZE + 1` entries of each source, and at most MAX_PAGES pages are offered
(docs/account.md: the dashboard's own index of entries is the way to go further).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import provisioning.diagnostics.auth_tables as health
from provisioning.account.catalog import NOT_AVAILABLE
from provisioning.account.selectors import provider_name
from provisioning.models import AuditEvent

PAGE_SIZE = 25
MAX_PAGES = 20
#: How close a dashboard event and an admin-API entry must be to be the same action.
STAFF_MATCH = dt.timedelta(seconds=5)
NIL_UUID = "00000000-0000-0000-0000-000000000000"

#: The filters staff pick from: value, label.
FILTERS = (
    ("", "Everything"),
    ("signins", "Sign-ins"),
    ("errors", "Errors and refusals"),
    ("staff", "Changes made by staff"),
)

SIGN_INS = {"login", "logout", "user_signedup", "invite_accepted", "mfa_code_login", "token_refreshed"}
REFUSALS = {"user_repeated_signup"}

#: GoTrue's actions (internal/models/audit_log_entry.go), in words; {provider} from traits.
WORDS = {
    "login": "signed in with {provider}",
    "logout": "signed out",
    "invite_accepted": "accepted the invitation",
    "user_signedup": "signed up with {provider}",
    "user_invited": "was invited",
    "user_deleted": "account deleted",
    "user_modified": "account changed",
    "user_recovery_requested": "asked for a password reset",
    "user_reauthenticate_requested": "asked for a reauthentication code",
    "user_confirmation_requested": "was sent a confirmation email",
    "user_repeated_signup": "signed up again with an existing email",
    "user_updated_password": "changed their password",
    "token_revoked": "token revoked",
    "token_refreshed": "session refreshed",
    "generate_recovery_codes": "generated MFA recovery codes",
    "factor_in_progress": "started adding an MFA factor",
    "factor_unenrolled": "MFA factor removed",
    "challenge_created": "was asked for an MFA code",
    "verification_attempted": "entered an MFA code",
    "factor_deleted": "factor deleted",
    "recovery_codes_deleted": "MFA recovery codes deleted",
    "factor_updated": "MFA factor changed",
    "mfa_code_login": "signed in with an MFA code",
    "identity_unlinked": "unlinked a sign-in method",
    "passkey_created": "added a passkey",
    "passkey_updated": "changed a passkey",
    "passkey_deleted": "removed a passkey",
}


@dataclass
class Entry:
    when: dt.datetime | None
    source: str  # "auth" or "dashboard"
    words: str
    who: str = ""
    kinds: set[str] = field(default_factory=set)
    raw: str | None = None  # the payload as stored, when it could not be read
    ip: str = ""
    event: AuditEvent | None = None


@dataclass
class Timeline:
    entries: list[Entry]
    available: bool = True
    note: str = ""
    page: int = 1
    has_next: bool = False
    kind: str = ""
    filters: tuple = FILTERS
    #: Set when the auth server does not write its events to the database (item 8).
    silent: str = ""


def parse_page(value) -> int:
    try:
        page = int(str(value))
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), MAX_PAGES)


def parse_kind(value) -> str:
    return value if value in {k for k, _ in FILTERS} else ""


def auth_entries(user_id: uuid.UUID, limit: int) -> list[tuple]:
    """(id, created_at, payload text, ip_address) of the newest `limit` entries whose payload
    mentions the user. A sequential read: see the module's docstring."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, created_at, payload::text, ip_address::text FROM auth.audit_log_entries"
            " WHERE payload::text LIKE %s ORDER BY created_at DESC NULLS LAST, id DESC LIMIT %s",
            [f"%{user_id}%", limit],
        )
        return cursor.fetchall()


def describe(user_id: uuid.UUID, created_at, payload_text: str | None, ip: str | None) -> Entry | None:
    """An auth entry in words, or None when it is not about this user after all. A payload
    that is not a JSON object is shown raw."""
    entry = Entry(when=created_at, source="auth", words="", ip=ip or "")
    try:
        payload = json.loads(payload_text) if payload_text is not None else None
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        entry.words, entry.raw, entry.kinds = "an auth event that could not be read", payload_text or "", {"errors"}
        return entry
    traits = payload.get("traits") if isinstance(payload.get("traits"), dict) else {}
    actor_id = str(payload.get("actor_id") or "")
    if str(user_id) not in (actor_id, str(traits.get("user_id") or "")):
        return None
    action = payload.get("action")
    template = WORDS.get(action) if isinstance(action, str) else None
    if template is None:
        entry.words = f"auth event “{action}”" if isinstance(action, str) else "an auth event without an action"
        entry.raw = payload_text
    else:
        provider = traits.get("provider")
        entry.words = template.format(provider=provider_name(provider) if provider else "an unknown method")
        entry.words = entry.words.replace(" with an unknown method", "")
    username = payload.get("actor_username")
    if actor_id == str(user_id):
        entry.who = "the user"
    elif username == "service_role" or actor_id in ("", NIL_UUID):
        entry.who = "the admin API (service_role)"
        entry.kinds.add("staff")
    else:
        entry.who = str(username or actor_id)
        entry.kinds.add("staff")
    if action in SIGN_INS:
        entry.kinds.add("signins")
    if action in REFUSALS:
        entry.kinds.add("errors")
    return entry


def dashboard_entry(event: AuditEvent) -> Entry:
    kinds = {"staff"}
    if event.outcome in (AuditEvent.Outcome.FAILED, AuditEvent.Outcome.DENIED, AuditEvent.Outcome.PARTIAL):
        kinds.add("errors")
    return Entry(
        when=event.created_at,
        source="dashboard",
        words=f"{event.get_action_display()} ({event.get_outcome_display().lower()})",
        who=event.actor_username,
        kinds=kinds,
        event=event,
    )


def name_staff(entries: list[Entry], events: list[Entry]) -> None:
    """An admin-API entry made by the dashboard names the staff member: the dashboard's own
    event about the same user within STAFF_MATCH."""
    for entry in entries:
        if entry.who != "the admin API (service_role)" or entry.when is None:
            continue
        match = min(
            (e for e in events if e.when and abs(e.when - entry.when) <= STAFF_MATCH),
            key=lambda e: abs(e.when - entry.when),
            default=None,
        )
        if match is not None:
            entry.who = f"{match.who} (staff, through the admin API)"


def timeline(user_id: uuid.UUID, columns: dict[str, set[str]], *, kind: str = "", page: int = 1) -> Timeline:
    """Page `page` of the user's timeline, newest first, only `kind` entries if given
    ("signins", "errors", "staff"). Auth's entries are left out, with a note, when this
    project's Auth has no audit_log_entries table."""
    kind, page = parse_kind(kind), parse_page(page)
    wanted = page * PAGE_SIZE + 1
    events = [dashboard_entry(e) for e in AuditEvent.objects.filter(target_user_ids__contains=[user_id])[: wanted * 2]]
    note, available, auth, silent = "", True, [], ""
    cols = columns.get("audit_log_entries", set())
    if not {"payload", "created_at"} <= cols:
        available, note = False, f"Auth's own events: {NOT_AVAILABLE}"
    else:
        try:
            rows = auth_entries(user_id, wanted * 2)
        except DatabaseError as error:
            available, note, rows = False, f"Auth's own events could not be read ({type(error).__name__})", []
        auth = [e for e in (describe(user_id, r[1], r[2], r[3]) for r in rows) if e is not None]
        name_staff(auth, events)
        if available and not auth:
            silent = silence_note()
    merged = [e for e in auth + events if not kind or kind in e.kinds]
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    merged.sort(key=lambda e: e.when or floor, reverse=True)
    start = (page - 1) * PAGE_SIZE
    return Timeline(
        entries=merged[start : start + PAGE_SIZE],
        available=available,
        note=note,
        page=page,
        has_next=len(merged) > start + PAGE_SIZE and page < MAX_PAGES,
        kind=kind,
        silent=silent,
    )


def silence_note() -> str:
    """What the timeline says instead of looking empty when the auth server does not write its
    events to the database (see `provisioning.diagnostics.auth_tables`); "" when it does."""
    try:
        silence = health.audit_log_silence()
    except DatabaseError:
        return ""
    if silence is None:
        return ""
    since = f"since {timezone.localtime(silence.since):%Y-%m-%d %H:%M}" if silence.since else "no entry at all"
    return (
        f"The auth server does not write its events to the database on this project ({since}): the timeline"
        f" shows only the dashboard's own events. To see them, turn on {health.AUDIT_SETTING}"
    )
