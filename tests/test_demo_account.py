"""The demo fills Supabase Auth's account tables believably (issue 25, item 12)."""

from __future__ import annotations

import pytest
from django.db import connection

from provisioning import demo

pytestmark = pytest.mark.django_db


def one(query: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def test_demo_has_identities_sessions_factors_and_a_timeline_per_user():
    demo.seed(500)

    providers = dict(
        one("SELECT json_object_agg(provider, n) FROM (SELECT provider, count(*) n FROM auth.identities GROUP BY 1) x")[
            0
        ]
    )
    assert {"email", "phone", "google", "github"} <= set(providers)
    # Two accounts sharing one email through different providers.
    (duplicates,) = one(
        "SELECT count(*) FROM (SELECT email FROM auth.identities WHERE email IS NOT NULL"
        " GROUP BY email HAVING count(DISTINCT user_id) > 1) d"
    )
    assert duplicates >= 3
    agents, ips, aal2 = one(
        "SELECT count(DISTINCT user_agent), count(DISTINCT ip), count(*) FILTER (WHERE aal = 'aal2') FROM auth.sessions"
    )
    assert agents >= 4 and ips >= 50 and aal2 > 0
    assert one("SELECT count(*) FROM auth.refresh_tokens")[0] == one("SELECT count(*) FROM auth.sessions")[0]
    verified, unverified = one(
        "SELECT count(*) FILTER (WHERE status = 'verified'), count(*) FILTER (WHERE status = 'unverified')"
        " FROM auth.mfa_factors WHERE factor_type = 'totp'"
    )
    assert verified > 0 and unverified > 0
    banned, unconfirmed = one(
        "SELECT count(*) FILTER (WHERE banned_until > now()),"
        " count(*) FILTER (WHERE email IS NOT NULL AND email_confirmed_at IS NULL) FROM auth.users"
    )
    assert banned > 0 and unconfirmed > 0
    actions = set(one("SELECT array_agg(DISTINCT payload->>'action') FROM auth.audit_log_entries")[0])
    assert {
        "user_signedup",
        "user_confirmation_requested",
        "login",
        "token_refreshed",
        "user_recovery_requested",
        "user_repeated_signup",
        "user_modified",
    } <= actions
    # Every non-anonymous user has a sign-up event about them.
    (without,) = one(
        "SELECT count(*) FROM auth.users u WHERE NOT u.is_anonymous AND NOT EXISTS ("
        " SELECT 1 FROM auth.audit_log_entries e WHERE e.payload->>'actor_id' = u.id::text"
        " AND e.payload->>'action' = 'user_signedup')"
    )
    assert without == 0


def test_the_incident_addresses_keep_their_stories():
    demo.seed(500)
    rows = one(
        "SELECT count(*), count(*) FILTER (WHERE email_confirmed_at IS NOT NULL AND banned_until IS NULL)"
        " FROM auth.users WHERE email = ANY(%s)",
        [list(demo.INCIDENT_EMAILS)],
    )
    assert rows == (7, 7)


def test_the_account_tables_are_a_fixed_function_of_n():
    digest = (
        "SELECT (SELECT md5(string_agg(to_jsonb(i)::text, E'\\n' ORDER BY i.id)) FROM auth.identities i),"
        " (SELECT md5(string_agg(to_jsonb(s)::text, E'\\n' ORDER BY s.id)) FROM auth.sessions s),"
        " (SELECT md5(string_agg(to_jsonb(f)::text, E'\\n' ORDER BY f.id)) FROM auth.mfa_factors f),"
        " (SELECT md5(string_agg(e.id || e.payload::text || e.created_at, E'\\n' ORDER BY e.id))"
        " FROM auth.audit_log_entries e)"
    )
    demo.seed(200)
    first = one(digest)
    demo.drop_demo_tables()
    demo.install_schema()
    demo.seed(200)
    assert one(digest) == first
