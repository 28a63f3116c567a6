"""Two questions about Supabase Auth's own tables (issue 25, items 8 and 9): are the auth
server's events written to the database, and do users have duplicate accounts (one email,
two sign-ups through different providers). The SQL is in `provisioning.diagnostics.auth_tables`,
which the account page and the list filter share.
"""

from __future__ import annotations

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

import provisioning.diagnostics.auth_tables as health
from provisioning.diagnostics.findings import OK, WARNING, Check

AUDIT_LOG = "Auth events written to the database"
DUPLICATES = "Accounts sharing an email"
#: The auth user list's filter value that lists exactly the users this check counts.
DUPLICATE_FILTER = "duplicate_email"


def duplicates_url() -> str:
    try:
        return reverse("admin:provisioning_authuser_changelist") + f"?account={DUPLICATE_FILTER}"
    except NoReverseMatch:  # pragma: no cover - the admin is always installed
        return ""


def check_audit_log() -> Check:
    if not health.audit_log_readable():
        return Check(AUDIT_LOG, OK, "No readable auth.audit_log_entries on this project's Auth version: not checked.")
    silence = health.audit_log_silence()
    if silence is None:
        return Check(AUDIT_LOG, OK, "The auth server writes its events to auth.audit_log_entries.")
    since = (
        f"the newest entry is from {timezone.localtime(silence.since):%Y-%m-%d %H:%M}"
        if silence.since
        else "the table is empty"
    )
    return Check(
        AUDIT_LOG,
        WARNING,
        f"Auth events are not written to the database: {silence.active_users} user"
        f"{'' if silence.active_users == 1 else 's'} signed in in the last {health.AUDIT_WINDOW_DAYS}"
        f" days, yet auth.audit_log_entries has no entry in that time ({since}). The user pages' timelines show"
        " only the dashboard's own events.",
        f"Turn on {health.AUDIT_SETTING} if support needs the auth server's events on the user's page.",
        {"active_users": silence.active_users, "since": silence.since.isoformat() if silence.since else None},
    )


def check_duplicate_emails() -> Check:
    query = health.duplicate_email_sql()
    if query is None:
        return Check(DUPLICATES, OK, "No readable auth.identities on this project's Auth version: not checked.")
    users, emails = health.duplicate_email_counts(query)
    if not users:
        return Check(DUPLICATES, OK, "No two live users share an email.", "", {"users": 0, "emails": 0})
    url = duplicates_url()
    return Check(
        DUPLICATES,
        WARNING,
        f"{users} live users share {emails} email{'' if emails == 1 else 's'} with another account"
        " (signed up twice, e.g. with email and then with Google): duplicate accounts.",
        "Open the list behind the number, and on each user's page see which sign-in methods the other account"
        " has; link the identities or delete the account the user does not use.",
        {"users": users, "emails": emails, "link": {"url": url, "text": f"List the {users} users"}},
    )
