"""One user's timeline: Supabase Auth's own events (auth.audit_log_entries) merged with the
dashboard's audit events about the user, newest first, in words a person reads.

auth.audit_log_entries has no index on the user and a `json` payload. Once the dashboard's
own index of who each entry is about is built (`event_index`, kept every minute), a page
reads the user's `page * PAGE_SIZE + 1` newest index rows (a range of its key), merges them
with the dashboard's events, and fetches only the page's entries from `auth`, by id: the log
is never scanned, up to MAX_INDEXED_PAGES pages. Entries newer than the index's last
catch-up appear after the next one; the page says up to when ("events up to 14:02:10").

Until the index is first built (a fresh install), the page reads the log directly, as
before: entries found by the user id's text in the payload (no cast, so no payload can fail
the query), a sequential read, at most MAX_PAGES pages. Either way the entries are parsed
here; what cannot be parsed is shown raw.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

import provisioning.diagnostics.auth_tables as health
from provisioning.account import event_index
from provisioning.account.catalog import NOT_AVAILABLE
from provisioning.account.selectors import provider_name
from provisioning.models import AuditEvent

PAGE_SIZE = 25
#: Pages offered when the log is read directly (each a sequential read of it).
MAX_PAGES = 20
#: Pages offered from the index (page N reads N * PAGE_SIZE rows of the index's key).
MAX_INDEXED_PAGES = 400
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
    #: An auth entry's id, while only its index row is known.
    entry_id: uuid.UUID | None = None


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
    #: From the index: the database time of its last catch-up ("events up to ...").
    as_of: dt.datetime | None = None
    #: Said while the index is not built yet (the log is read directly).
    index_note: str = ""


def parse_page(value, most: int = MAX_PAGES) -> int:
    try:
        page = int(str(value))
    except (TypeError, ValueError):
        return 1
    return min(max(page, 1), most)


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
    actor_id = str(payload.get("actor_id") or "").lower()
    if str(user_id) not in (actor_id, str(traits.get("user_id") or "").lower()):
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
    ("signins", "errors", "staff"): from the dashboard's index of auth events once it is
    built, else read from the log directly. Auth's entries are left out, with a note, when
    this project's Auth has no audit_log_entries table."""
    kind = parse_kind(kind)
    cols = columns.get("audit_log_entries", set())
    if not {"payload", "created_at"} <= cols:
        page = parse_page(page)
        events = dashboard_entries(user_id, page * PAGE_SIZE + 1)
        result = merged_page(events, [], kind, page, MAX_PAGES)
        result.available, result.note = False, f"Auth's own events: {NOT_AVAILABLE}"
        return result
    state = index_state() if "id" in cols else None
    if state is None:
        return live_timeline(user_id, kind, parse_page(page))
    return indexed_timeline(user_id, kind, parse_page(page, MAX_INDEXED_PAGES), state)


def dashboard_entries(user_id: uuid.UUID, wanted: int) -> list[Entry]:
    return [dashboard_entry(e) for e in AuditEvent.objects.filter(target_user_ids__contains=[user_id])[: wanted * 2]]


def merged_page(auth: list[Entry], events: list[Entry], kind: str, page: int, most: int) -> Timeline:
    merged = [e for e in auth + events if not kind or kind in e.kinds]
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    merged.sort(key=lambda e: e.when or floor, reverse=True)
    start = (page - 1) * PAGE_SIZE
    return Timeline(
        entries=merged[start : start + PAGE_SIZE],
        page=page,
        has_next=len(merged) > start + PAGE_SIZE and page < most,
        kind=kind,
    )


def index_state():
    """The index's state, or None while it is not built (or cannot be read)."""
    try:
        with transaction.atomic():
            return event_index.state()
    except DatabaseError:
        return None


def live_timeline(user_id: uuid.UUID, kind: str, page: int) -> Timeline:
    """The page read from the log directly (no index yet): a sequential read of it."""
    wanted = page * PAGE_SIZE + 1
    events = dashboard_entries(user_id, wanted)
    available, note, silent = True, "", ""
    try:
        rows = auth_entries(user_id, wanted * 2)
    except DatabaseError as error:
        available, note, rows = False, f"Auth's own events could not be read ({type(error).__name__})", []
    auth = [e for e in (describe(user_id, r[1], r[2], r[3]) for r in rows) if e is not None]
    name_staff(auth, events)
    if available and not auth:
        silent = silence_note()
    result = merged_page(auth, events, kind, page, MAX_PAGES)
    result.available, result.note, result.silent = available, note, silent
    result.index_note = (
        "The dashboard's index of auth events is being built (manage.py auth_events_index, every minute"
        " under make run): until then this timeline reads the auth log directly, which is slow on a large log"
    )
    return result


def indexed_timeline(user_id: uuid.UUID, kind: str, page: int, state) -> Timeline:
    """The page from the index: the user's newest `page * PAGE_SIZE + 1` index rows merged
    with the dashboard's events; only the page's auth entries are read from the log, by id."""
    wanted = page * PAGE_SIZE + 1
    events = dashboard_entries(user_id, wanted)
    try:
        with transaction.atomic():
            refs = event_index.entries_of(user_id, event_index.kind_condition(kind, SIGN_INS, REFUSALS), wanted)
    except DatabaseError as error:
        result = merged_page([], events, kind, page, MAX_INDEXED_PAGES)
        result.available, result.note = False, f"Auth's own events could not be read ({type(error).__name__})"
        return result
    # Placeholders in the index's order; the page's own are filled in below.
    placeholders = [
        Entry(when=when, source="auth", words="", entry_id=entry_id, kinds={kind} if kind else set())
        for entry_id, when in refs
    ]
    result = merged_page(placeholders, events, kind, page, MAX_INDEXED_PAGES)
    wanted_ids = [e.entry_id for e in result.entries if e.entry_id is not None]
    try:
        rows = event_index.fetch(wanted_ids)
    except DatabaseError as error:
        rows, result.available = {}, False
        result.note = f"Auth's own events could not be read ({type(error).__name__})"
    entries, auth = [], []
    for entry in result.entries:
        if entry.entry_id is None:
            entries.append(entry)
            continue
        row = rows.get(entry.entry_id)
        described = describe(user_id, row[1], row[2], row[3]) if row else None
        if described is not None:  # gone from the log since it was indexed, or not about the user
            entries.append(described)
            auth.append(described)
    name_staff(auth, events)
    result.entries, result.as_of = entries, state.caught_up_at
    if not refs and (not kind or not event_index.has_entries(user_id)):
        # The index saw an entry in the last days: the log is written, no need to ask.
        recent = state.watermark_created_at and state.watermark_created_at > timezone.now() - dt.timedelta(
            days=health.AUDIT_WINDOW_DAYS
        )
        result.silent = "" if recent else silence_note()
    return result


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
