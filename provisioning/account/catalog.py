"""Which of Supabase Auth's account tables and columns this project has, and may be read.

Older Auth versions lack some tables (mfa_factors before 2022, sessions before 2022) or
columns (identities.email, sessions.user_agent, mfa_factors.last_challenged_at): a section
reads only what is there, and says when its table is missing. A column the dashboard's role
may not SELECT counts as missing, so the page works under column grants (least privilege).
"""

from __future__ import annotations

from django.db import connection

#: The tables the account page reads, and the only columns it ever names. Secret columns
#: (refresh tokens, refresh_token_hmac_key, factor secrets, WebAuthn credentials, challenge
#: codes) are not in these lists, so no query of this room can return them. identity_data is
#: read only through `->> 'email' / 'full_name' / 'name' / 'avatar_url'`.
READABLE = {
    "users": (
        "id",
        "email",
        "phone",
        "email_confirmed_at",
        "phone_confirmed_at",
        "confirmation_sent_at",
        "banned_until",
        "last_sign_in_at",
        "raw_app_meta_data",
        "is_sso_user",
        "created_at",
    ),
    "identities": ("user_id", "provider", "email", "identity_data", "created_at", "last_sign_in_at"),
    "sessions": ("user_id", "created_at", "updated_at", "refreshed_at", "user_agent", "ip", "aal", "not_after"),
    "mfa_factors": ("user_id", "friendly_name", "factor_type", "status", "created_at", "last_challenged_at"),
    "audit_log_entries": ("id", "payload", "created_at", "ip_address"),
}

NOT_AVAILABLE = "not available on this project's Auth version"


def auth_columns() -> dict[str, set[str]]:
    """{table: readable columns} for the tables of READABLE that exist in `auth`; a table
    that is missing is not a key. One catalog query."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, a.attname
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = 'auth' AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v')
              AND has_column_privilege(c.oid, a.attnum, 'SELECT')
            """,
            [list(READABLE)],
        )
        found: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            if column in READABLE[table]:
                found.setdefault(table, set()).add(column)
    return found
