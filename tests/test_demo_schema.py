"""Where Django's tables live, and the shape of the demo schema."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db


def tables_in(schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema])
        return {row[0] for row in cursor.fetchall()}


def test_no_dashboard_table_is_in_public_or_auth():
    assert tables_in("public") == {"users", "profiles", "wallets"}
    # Supabase Auth's own tables, as its migrations make them (docs/account.md): none is ours.
    assert tables_in("auth") == {
        "users",
        "identities",
        "sessions",
        "refresh_tokens",
        "mfa_factors",
        "mfa_challenges",
        "audit_log_entries",
    }
    ours = tables_in(settings.DJANGO_SCHEMA)
    assert {"django_migrations", "django_session", "auth_user", "provisioning_auditevent"} <= ours


def test_demo_auth_users_has_only_the_hosted_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'auth' AND tablename = 'users'")
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert "created_at" not in definitions
    assert "last_sign_in_at" not in definitions


def test_demo_audit_log_entries_is_as_on_a_hosted_project_json_and_no_index_on_the_user():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'audit_log_entries' AND column_name = 'payload'"
        )
        assert cursor.fetchone() == ("json",)
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'auth' AND tablename = 'audit_log_entries'")
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert "payload" not in definitions
    assert "instance_id" in definitions


def test_demo_identity_email_is_generated_from_identity_data():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT is_generated, generation_expression FROM information_schema.columns"
            " WHERE table_schema = 'auth' AND table_name = 'identities' AND column_name = 'email'"
        )
        generated, expression = cursor.fetchone()
    assert generated == "ALWAYS"
    assert "identity_data" in expression
