"""The account page's reads, search and filters work under the README's grants, which give
exactly the non-secret columns of Supabase Auth's account tables (issue 25, item 10)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from provisioning.account import filters
from provisioning.account.overview import account
from provisioning.engine import selectors
from provisioning.models import AuthUser
from tests.account_rows import SECRET, add_event, add_factor, add_identity, add_session
from tests.factories import execute, make_auth_user
from tests.test_engine_least_privilege import GRANTS, ROLE

pytestmark = pytest.mark.django_db


def test_the_account_sections_search_and_filters_work_under_the_readme_grants():
    user = make_auth_user("lp@example.com", confirmed=True, provider="email")
    add_identity(user, "google", "LP.Other@example.com", data={"name": "Lee"})
    add_session(user, aal="aal2", secret=SECRET)
    add_factor(user, secret=SECRET)
    add_event(user, "login", traits={"provider": "google"})
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")

    seen = account(user)
    found = set(selectors.search_auth_users(AuthUser.objects.all(), "lp.other@").values_list("pk", flat=True))
    with_mfa = set(AuthUser.objects.filter(filters.state_q("mfa")).values_list("pk", flat=True))
    via_google = set(AuthUser.objects.filter(filters.provider_q("email")).values_list("pk", flat=True))

    execute("RESET ROLE")
    assert [r["provider"] for r in seen.identities.rows] == ["google"]
    assert seen.identities.rows[0]["email"] == "lp.other@example.com"
    assert seen.identities.rows[0]["name"] is None  # identity_data is not granted
    assert seen.sessions.rows[0]["aal"] == "aal2" and seen.factors.rows[0]["status"] == "verified"
    assert [e.words for e in seen.timeline.entries] == ["signed in with Google"]
    assert seen.summary.mfa is True and seen.summary.open_sessions == 1
    assert found == {user} and with_mfa == {user} and via_google == {user}


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT identity_data FROM auth.identities",
        "SELECT refresh_token_hmac_key FROM auth.sessions",
        "SELECT secret FROM auth.mfa_factors",
        "SELECT web_authn_credential FROM auth.mfa_factors",
        "SELECT token FROM auth.refresh_tokens",
        "SELECT otp_code FROM auth.mfa_challenges",
        # The one write to auth the README grants is DELETE on auth.sessions (sign out
        # everywhere, docs/fixing-accounts.md): nothing else can be changed.
        "UPDATE auth.sessions SET aal = 'aal1'",
        "DELETE FROM auth.users",
        "DELETE FROM auth.identities",
        "DELETE FROM auth.mfa_factors",
        "UPDATE auth.users SET banned_until = now()",
    ],
)
def test_the_readme_grants_cannot_read_the_account_secrets(statement):
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")
    with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic(), connection.cursor() as c:
        c.execute(statement)
    execute("RESET ROLE")
