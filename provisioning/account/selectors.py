"""Reads of one user's account in `auth`: sign-in methods, sessions, MFA factors and the
summary line. Read-only, one query per section, non-secret columns only (catalog.READABLE).

Each section is a `Section`: `available` is False (with `note`) when this project's Auth
version has no such table or column, or the read failed; the page then says so for that
section alone, and the rest of the page still shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from psycopg import sql

from provisioning.account.catalog import NOT_AVAILABLE

#: How many sessions and factors the page lists (newest first); a user rarely has more.
SESSION_LIMIT = 20
FACTOR_LIMIT = 20

#: Provider names as support staff say them.
PROVIDERS = {
    "email": "email",
    "phone": "phone",
    "google": "Google",
    "github": "GitHub",
    "gitlab": "GitLab",
    "apple": "Apple",
    "azure": "Microsoft",
    "facebook": "Facebook",
    "twitter": "Twitter",
    "discord": "Discord",
    "slack": "Slack",
    "slack_oidc": "Slack",
    "linkedin_oidc": "LinkedIn",
    "sso": "SSO",
    "anonymous": "anonymous",
}


def provider_name(provider) -> str:
    if not isinstance(provider, str) or not provider:
        return "an unknown method"
    if provider.startswith("sso:"):
        return "SSO"
    return PROVIDERS.get(provider, provider.capitalize())


@dataclass
class Section:
    available: bool
    rows: list[dict] = field(default_factory=list)
    note: str = ""


def unavailable(note: str = NOT_AVAILABLE) -> Section:
    return Section(available=False, note=note)


def column(columns: set[str], name: str, alias: str | None = None) -> sql.Composable:
    """`name AS alias` if the column is there, else `NULL AS alias`: older Auth versions."""
    value = sql.Identifier(name) if name in columns else sql.SQL("NULL")
    return sql.SQL("{} AS {}").format(value, sql.Identifier(alias or name))


def fetch(query: sql.Composable, params: list) -> list[dict]:
    """Rows as dicts, in a savepoint: a failed read leaves the request's transaction usable."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(query, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read(query: sql.Composable, params: list) -> Section:
    try:
        return Section(available=True, rows=fetch(query, params))
    except DatabaseError as error:
        return unavailable(f"could not be read ({type(error).__name__})")


def sign_in_methods(user_id: uuid.UUID, columns: dict[str, set[str]]) -> Section:
    """The user's identities, oldest first: provider, email, name and avatar from
    identity_data (nothing else of it), created, last sign-in; and for each, the other
    accounts whose identities carry the same email (duplicate accounts)."""
    cols = columns.get("identities")
    if not cols or not {"user_id", "provider"} <= cols:
        return unavailable()
    data = "identity_data" in cols
    claim = (lambda key: sql.SQL("identity_data ->> {}").format(sql.Literal(key))) if data else None
    email = (
        sql.Identifier("email")
        if "email" in cols
        else (sql.SQL("lower({})").format(claim("email")) if data else sql.SQL("NULL"))
    )
    name = sql.SQL("coalesce({}, {})").format(claim("full_name"), claim("name")) if data else sql.SQL("NULL")
    avatar = claim("avatar_url") if data else sql.SQL("NULL")
    query = sql.SQL(
        "SELECT provider, {email} AS email, {name} AS name, {avatar} AS avatar_url, {created}, {last}"
        " FROM auth.identities WHERE user_id = %s ORDER BY {order} LIMIT 50"
    ).format(
        email=email,
        name=name,
        avatar=avatar,
        created=column(cols, "created_at"),
        last=column(cols, "last_sign_in_at"),
        order=sql.SQL("created_at NULLS LAST, provider") if "created_at" in cols else sql.SQL("provider"),
    )
    section = read(query, [user_id])
    if not section.available:
        return section
    emails = sorted({row["email"] for row in section.rows if row["email"]})
    others: dict[str, list[dict]] = {}
    if emails:
        # identities_email_idx (text_pattern_ops) serves the equality: no scan.
        other = read(
            sql.SQL(
                "SELECT i.user_id, i.provider, {email} AS email FROM auth.identities i"
                " WHERE {email} = ANY(%s) AND i.user_id <> %s ORDER BY i.user_id LIMIT 20"
            ).format(email=email),
            [emails, user_id],
        )
        for row in other.rows:
            others.setdefault(row["email"], []).append(
                {"user_id": row["user_id"], "provider": provider_name(row["provider"])}
            )
    for row in section.rows:
        row["provider_name"] = provider_name(row["provider"])
        # Said once per email, on the first identity that carries it.
        row["other_accounts"] = others.pop(row["email"], [])
        if row["avatar_url"] and not str(row["avatar_url"]).startswith("https://"):
            row["avatar_url"] = None  # only an https picture is linked
    return section


def sessions(user_id: uuid.UUID, columns: dict[str, set[str]]) -> Section:
    """The user's sessions, newest first (at most SESSION_LIMIT): created, last refreshed,
    user agent, IP, assurance level, not_after, and whether it is still open. Never a
    refresh token nor the session's HMAC key."""
    cols = columns.get("sessions")
    if not cols or "user_id" not in cols:
        return unavailable()
    query = sql.SQL(
        "SELECT {created}, {updated}, {refreshed}, {agent}, {ip} AS ip, {aal} AS aal, {not_after}"
        " FROM auth.sessions WHERE user_id = %s ORDER BY {order} LIMIT %s"
    ).format(
        created=column(cols, "created_at"),
        updated=column(cols, "updated_at"),
        refreshed=column(cols, "refreshed_at"),
        agent=column(cols, "user_agent"),
        ip=sql.SQL("host(ip)") if "ip" in cols else sql.SQL("NULL"),
        aal=sql.SQL("aal::text") if "aal" in cols else sql.SQL("NULL"),
        not_after=column(cols, "not_after"),
        order=sql.SQL("created_at DESC NULLS LAST") if "created_at" in cols else sql.SQL("1"),
    )
    section = read(query, [user_id, SESSION_LIMIT])
    from django.utils import timezone

    now = timezone.now()
    for row in section.rows:
        row["open"] = row["not_after"] is None or row["not_after"] > now
    return section


def mfa_factors(user_id: uuid.UUID, columns: dict[str, set[str]]) -> Section:
    """The user's MFA factors, oldest first: type, friendly name, status, created, last
    challenged. Never the secret nor a WebAuthn credential."""
    cols = columns.get("mfa_factors")
    if not cols or "user_id" not in cols:
        return unavailable()
    query = sql.SQL(
        "SELECT {name}, {kind} AS factor_type, {status} AS status, {created}, {challenged}"
        " FROM auth.mfa_factors WHERE user_id = %s ORDER BY {order} LIMIT %s"
    ).format(
        name=column(cols, "friendly_name"),
        kind=sql.SQL("factor_type::text") if "factor_type" in cols else sql.SQL("NULL"),
        status=sql.SQL("status::text") if "status" in cols else sql.SQL("NULL"),
        created=column(cols, "created_at"),
        challenged=column(cols, "last_challenged_at"),
        order=sql.SQL("created_at") if "created_at" in cols else sql.SQL("1"),
    )
    return read(query, [user_id, FACTOR_LIMIT])


@dataclass
class Summary:
    confirmed_at: object = None
    confirmation_sent_at: object = None
    banned_until: object = None
    banned: bool = False
    last_sign_in_at: object = None
    providers: list[str] = field(default_factory=list)
    mfa: bool | None = None
    open_sessions: int | None = None
    is_sso_user: bool = False


def summary(
    user_id: uuid.UUID, columns: dict[str, set[str]], identities: Section, factors: Section, open_sessions: Section
) -> Summary | None:
    """The line at the top of the page: confirmed (or since when the confirmation email
    waits), banned until, last sign-in, providers, MFA on/off, sessions open. None if
    auth.users cannot be read."""
    from django.utils import timezone

    cols = columns.get("users", set())
    confirmed = [c for c in ("email_confirmed_at", "phone_confirmed_at") if c in cols]
    query = sql.SQL(
        "SELECT {confirmed} AS confirmed_at, {sent}, {banned}, {last}, {meta}, {sso} FROM auth.users WHERE id = %s"
    ).format(
        confirmed=sql.SQL("least({})").format(sql.SQL(", ").join(map(sql.Identifier, confirmed)))
        if confirmed
        else sql.SQL("NULL"),
        sent=column(cols, "confirmation_sent_at"),
        banned=column(cols, "banned_until"),
        last=column(cols, "last_sign_in_at"),
        meta=sql.SQL("raw_app_meta_data -> 'providers' AS providers")
        if "raw_app_meta_data" in cols
        else sql.SQL("NULL AS providers"),
        sso=column(cols, "is_sso_user"),
    )
    section = read(query, [user_id])
    if not section.available or not section.rows:
        return None
    row = section.rows[0]
    providers = [r["provider_name"] for r in identities.rows] if identities.available else []
    if not providers and isinstance(row["providers"], list):
        providers = [provider_name(p) for p in row["providers"]]
    return Summary(
        confirmed_at=row["confirmed_at"],
        confirmation_sent_at=row["confirmation_sent_at"],
        banned_until=row["banned_until"],
        banned=bool(row["banned_until"] and row["banned_until"] > timezone.now()),
        last_sign_in_at=row["last_sign_in_at"],
        providers=list(dict.fromkeys(providers)),
        mfa=any(f["status"] == "verified" for f in factors.rows) if factors.available else None,
        open_sessions=sum(1 for s in open_sessions.rows if s["open"]) if open_sessions.available else None,
        is_sso_user=bool(row["is_sso_user"]),
    )
