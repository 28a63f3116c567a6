"""Rows in Supabase Auth's account tables for one user, as GoTrue writes them."""

from __future__ import annotations

import json
import uuid

from tests.factories import execute

SECRET = "PLANTED-SECRET"


def add_identity(user_id, provider: str, email: str | None, *, data: dict | None = None, when: str = "now()") -> None:
    identity_data = {"sub": str(user_id) if provider == "email" else f"{provider}-{uuid.uuid4().hex[:10]}"}
    if email:
        identity_data["email"] = email
    identity_data.update(data or {})
    execute(
        "INSERT INTO auth.identities"
        " (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)"
        f" VALUES (%s, %s, %s::jsonb, %s, {when}, {when}, {when})",
        [identity_data["sub"], user_id, json.dumps(identity_data), provider],
    )


def add_session(
    user_id,
    *,
    agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1",
    ip="203.0.113.7",
    aal="aal1",
    not_after=None,
    secret: str | None = None,
) -> uuid.UUID:
    session_id = uuid.uuid4()
    execute(
        "INSERT INTO auth.sessions (id, user_id, created_at, updated_at, aal, not_after, refreshed_at, user_agent, ip,"
        " refresh_token_hmac_key, refresh_token_counter, tag)"
        " VALUES (%s, %s, now() - interval '2 days', now(), %s, %s, now() at time zone 'utc', %s, %s, %s, 3, %s)",
        [session_id, user_id, aal, not_after, agent, ip, secret, secret],
    )
    execute(
        "INSERT INTO auth.refresh_tokens (token, user_id, revoked, created_at, updated_at, session_id, parent)"
        " VALUES (%s, %s, false, now(), now(), %s, %s)",
        [f"{secret or 'tok'}-{uuid.uuid4().hex}", str(user_id), session_id, secret],
    )
    return session_id


def add_factor(user_id, *, name="iPhone", status="verified", kind="totp", secret: str | None = None) -> uuid.UUID:
    factor_id = uuid.uuid4()
    execute(
        "INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at, updated_at, secret,"
        " web_authn_credential, last_webauthn_challenge_data)"
        " VALUES (%s, %s, %s, %s, %s, now() - interval '30 days', now(), %s, %s::jsonb, %s::jsonb)",
        [
            factor_id,
            user_id,
            name,
            kind,
            status,
            secret,
            json.dumps({"key": secret}) if secret else None,
            json.dumps({"challenge": secret}) if secret else None,
        ],
    )
    if secret:
        execute(
            "INSERT INTO auth.mfa_challenges (id, factor_id, created_at, ip_address, otp_code, web_authn_session_data)"
            " VALUES (%s, %s, now(), '203.0.113.7', %s, %s::jsonb)",
            [uuid.uuid4(), factor_id, secret, json.dumps({"s": secret})],
        )
    return factor_id


def add_event(
    user_id,
    action: str,
    *,
    traits: dict | None = None,
    ago: str = "1 hour",
    actor=None,
    username="someone@example.com",
    payload: str | None = None,
) -> None:
    """An auth.audit_log_entries row as GoTrue's NewAuditLogEntry writes it; `payload` as
    given (raw) when set."""
    if payload is None:
        body = {
            "actor_id": str(actor or user_id),
            "actor_via_sso": False,
            "actor_username": username,
            "action": action,
            "log_type": "account",
        }
        if traits is not None:
            body["traits"] = traits
        payload = json.dumps(body)
    execute(
        "INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)"
        " VALUES ('00000000-0000-0000-0000-000000000000', %s, %s::json, now() - %s::interval, '198.51.100.4')",
        [uuid.uuid4(), payload, ago],
    )
