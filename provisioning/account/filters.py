"""The list's account filters and its providers column (issue 25, item 6): what Auth knows
of a sign-up, as conditions on auth.users. Read-only; built from fixed SQL, never from input.

Providers come from `auth.users.raw_app_meta_data` (`provider` and `providers`, which Auth
keeps up to date as identities are linked), so the column costs no join; "has MFA" reads
auth.mfa_factors, where this project's Auth has it.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q, TextField
from django.db.models.expressions import RawSQL
from django.utils import timezone

import provisioning.diagnostics.auth_tables as health

#: The providers the filter offers: Supabase's own names, in the words staff use.
PROVIDER_CHOICES = (
    ("email", "Email"),
    ("phone", "Phone"),
    ("google", "Google"),
    ("github", "GitHub"),
    ("apple", "Apple"),
    ("azure", "Microsoft"),
    ("sso", "SSO"),
    ("anonymous", "Anonymous"),
)

STATE_CHOICES = (
    ("confirmed", "Confirmed"),
    ("unconfirmed", "Not confirmed"),
    ("banned", "Banned now"),
    ("mfa", "Has MFA (a verified factor)"),
    ("never_signed_in", "Never signed in"),
    ("inactive_90", "No sign-in for 90 days"),
    ("sso", "SSO user"),
    ("duplicate_email", "Shares an email with another account"),
)

#: The providers of a sign-up as one text: "email,google".
PROVIDERS_SQL = (
    "array_to_string(ARRAY(SELECT jsonb_array_elements_text(CASE"
    " WHEN jsonb_typeof(auth.users.raw_app_meta_data -> 'providers') = 'array'"
    " THEN auth.users.raw_app_meta_data -> 'providers'"
    " ELSE jsonb_build_array(auth.users.raw_app_meta_data ->> 'provider') END)), ',')"
)


def providers_annotation() -> RawSQL:
    return RawSQL(PROVIDERS_SQL, (), output_field=TextField())  # noqa: S611 - fixed SQL, no input


def provider_q(provider: str) -> Q:
    """Sign-ups that can sign in with `provider` (one of PROVIDER_CHOICES)."""
    if provider == "sso":
        return Q(is_sso_user=True) | Q(
            pk__in=RawSQL("SELECT id FROM auth.users WHERE raw_app_meta_data ->> 'provider' LIKE 'sso:%%'", ())
        )
    return Q(
        pk__in=RawSQL(
            "SELECT id FROM auth.users WHERE raw_app_meta_data -> 'providers' ? %s"
            " OR raw_app_meta_data ->> 'provider' = %s",
            (provider, provider),
        )
    )


def mfa_factors_readable() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) = 2 FROM pg_attribute"
            " WHERE attrelid = to_regclass('auth.mfa_factors') AND attname IN ('user_id', 'status')"
            " AND NOT attisdropped AND has_column_privilege(attrelid, attnum, 'SELECT')"
        )
        return bool(cursor.fetchone()[0])


def state_q(state: str) -> Q | None:
    """The condition of one of STATE_CHOICES; None when this project's Auth cannot answer it
    (no auth.mfa_factors; no auth.identities for "duplicate_email")."""
    now = timezone.now()
    if state == "confirmed":
        return Q(email_confirmed_at__isnull=False) | Q(phone_confirmed_at__isnull=False)
    if state == "unconfirmed":
        return Q(email_confirmed_at__isnull=True, phone_confirmed_at__isnull=True)
    if state == "banned":
        return Q(banned_until__gt=now)
    if state == "never_signed_in":
        return Q(last_sign_in_at__isnull=True)
    if state == "inactive_90":
        return Q(last_sign_in_at__lt=now - dt.timedelta(days=90))
    if state == "sso":
        return Q(is_sso_user=True)
    if state == "duplicate_email":
        # One subquery, the doctor's own (provisioning.diagnostics.auth_tables): the same users it counts.
        query = health.duplicate_email_sql()
        if query is None:
            return None
        return Q(pk__in=RawSQL(f"SELECT user_id FROM ({query}) d", ()))  # noqa: S611 - fixed SQL, no input
    if state == "mfa":
        if not mfa_factors_readable():
            return None
        return Q(pk__in=RawSQL("SELECT user_id FROM auth.mfa_factors WHERE status = 'verified'", ()))
    raise ValueError(state)
