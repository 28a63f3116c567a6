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
    assert tables_in("auth") == {"users"}
    ours = tables_in(settings.DJANGO_SCHEMA)
    assert {"django_migrations", "django_session", "auth_user", "provisioning_auditevent"} <= ours


def test_demo_auth_users_has_only_the_hosted_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'auth' AND tablename = 'users'")
        definitions = " ".join(row[0] for row in cursor.fetchall())
    assert "created_at" not in definitions
    assert "last_sign_in_at" not in definitions
