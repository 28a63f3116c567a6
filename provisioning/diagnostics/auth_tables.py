"""Two questions about a project's Auth that the doctor, the account page and the list share
(issue 25, items 8 and 9). Read-only, fixed SQL.

- `audit_log_silence`: does the auth server write its events to auth.audit_log_entries? There
  is no flag in the database for Supabase's "Log auth events to the database" setting
  (GoTrue's GOTRUE_AUDIT_LOG_DISABLE_POSTGRES, `audit_log_disable_postgres` in the Management
  API): it is inferred. Users who signed in during the last AUDIT_WINDOW_DAYS (GoTrue sets
  auth.users.last_sign_in_at and writes a "login" entry on every sign-in, a sign-up that signs
  in included) while the table has no entry in that window means the events are not written.
  Sign-ups alone (created_at) are not counted: rows inserted by SQL (imports, seeds) are never
  in the log even when it is on, and would be taken for a silent log.
- `duplicate_email_sql`: live users that share an email (case-insensitively) with another
  live user, through auth.users.email or any identity's email: duplicate accounts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection, transaction

#: How far back "recently" reaches.
AUDIT_WINDOW_DAYS = 7
#: The setting, as Supabase names it and as GoTrue reads it.
AUDIT_SETTING = (
    "Authentication → Settings: “Log auth events to the database” "
    "(GOTRUE_AUDIT_LOG_DISABLE_POSTGRES; `audit_log_disable_postgres` in the Management API)"
)


def readable_columns(table: str) -> set[str]:
    """The columns of auth.`table` the dashboard's role may SELECT; empty when the table is
    missing (older Auth). The account page's catalog (provisioning.account.catalog) asks the
    same of every table it reads."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0"
            " AND NOT attisdropped AND has_column_privilege(attrelid, attnum, 'SELECT')",
            [f"auth.{table}"],
        )
        return {row[0] for row in cursor.fetchall()}


@dataclass
class Silence:
    """Auth users were active while the audit log stayed empty."""

    active_users: int
    since: dt.datetime | None  # the newest entry there is, None when the table is empty


def audit_log_readable() -> bool:
    return {"payload", "created_at"} <= readable_columns("audit_log_entries") and "last_sign_in_at" in (
        readable_columns("users")
    )


def audit_log_silence(days: int = AUDIT_WINDOW_DAYS) -> Silence | None:
    """A `Silence` when users signed in in the last `days` days and auth.audit_log_entries
    has no entry in that time; None when the log is written (or nobody was active). The
    caller checks `audit_log_readable` first."""
    with transaction.atomic(), connection.cursor() as cursor:
        live = "deleted_at IS NULL AND " if "deleted_at" in readable_columns("users") else ""
        cursor.execute(
            "SELECT (SELECT count(*) FROM auth.users"
            f"         WHERE {live}last_sign_in_at > now() - make_interval(days => %s)),"
            "       EXISTS (SELECT 1 FROM auth.audit_log_entries WHERE created_at > now() - make_interval(days => %s))",
            [days, days],
        )
        active, written = cursor.fetchone()
        if written or not active:
            return None
        cursor.execute("SELECT max(created_at) FROM auth.audit_log_entries")
        return Silence(active_users=active, since=cursor.fetchone()[0])


def duplicate_email_sql() -> str | None:
    """SQL of (user_id, email) rows: each live user whose email (lower-cased) another live
    user also has, through auth.users.email or an identity's email. None when this
    project's Auth has no readable auth.identities (older Auth)."""
    cols = readable_columns("identities")
    if "user_id" not in cols or not cols & {"email", "identity_data"}:
        return None
    if "email" in cols and "identity_data" in cols:
        identity_email = "coalesce(i.email, i.identity_data ->> 'email')"
    elif "email" in cols:
        identity_email = "i.email"
    else:
        identity_email = "i.identity_data ->> 'email'"
    users = readable_columns("users")
    if not {"id", "email"} <= users:
        return None
    # Older Auth versions lack deleted_at (2023) or is_anonymous (2024): every user is live there.
    live = " AND ".join(
        ["true"]
        + (["u.deleted_at IS NULL"] if "deleted_at" in users else [])
        + (["NOT u.is_anonymous"] if "is_anonymous" in users else [])
    )
    return (
        "WITH emails AS ("
        " SELECT u.id AS user_id, lower(u.email) AS email FROM auth.users u"
        f"  WHERE {live} AND coalesce(u.email, '') <> ''"
        " UNION"
        f" SELECT i.user_id, lower({identity_email}) FROM auth.identities i"
        "  JOIN auth.users u ON u.id = i.user_id"
        f"  WHERE {live} AND coalesce({identity_email}, '') <> ''"
        "), shared AS (SELECT email FROM emails GROUP BY email HAVING count(DISTINCT user_id) > 1)"
        " SELECT user_id, email FROM emails WHERE email IN (SELECT email FROM shared)"
    )


def duplicate_email_counts(query: str) -> tuple[int, int]:
    """(users, emails) of `duplicate_email_sql`: each user counted once."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT user_id), count(DISTINCT email) FROM ({query}) d")
        users, emails = cursor.fetchone()
        return users, emails
