"""Reads for the account actions: which user an identifier names, their MFA factors, what a
delete would take with it, and which actions a staff member may use and why some cannot run."""

from __future__ import annotations

import uuid

from django.db import connection

from provisioning.ids import parse_uuid


def find_user(identifier: str) -> tuple[uuid.UUID | None, str]:
    """The auth user an id or an exact email (any case) names: (id, "") or (None, why).
    Stricter than the search box: an action that changes an account never guesses."""
    text = (identifier or "").strip()
    as_uuid = parse_uuid(text)
    with connection.cursor() as cursor:
        if as_uuid is not None:
            cursor.execute("SELECT id FROM auth.users WHERE id = %s", [as_uuid])
        else:
            cursor.execute("SELECT id FROM auth.users WHERE lower(email) = lower(%s) LIMIT 2", [text])
        found = [row[0] for row in cursor.fetchall()]
    if len(found) == 1:
        return found[0], ""
    if found:
        return None, f"several auth users have the email {text}: give the user id"
    return None, f"no auth user with the id or email {text!r}"


def user_factors(user_id) -> list[dict]:
    """The user's MFA factors (id, type, name, status), oldest first. Never a secret."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, factor_type::text, friendly_name, status::text FROM auth.mfa_factors"
            " WHERE user_id = %s ORDER BY created_at, id",
            [user_id],
        )
        return [dict(zip(("id", "type", "name", "status"), row, strict=True)) for row in cursor.fetchall()]


def email_of(user_id) -> str | None:
    """The auth user's email (None when they have none or are gone)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM auth.users WHERE id = %s", [user_id])
        row = cursor.fetchone()
    return row[0] if row else None
