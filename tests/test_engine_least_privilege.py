"""The README's least-privilege grants are enough to run the dashboard, and keep the
secrets of auth.users out of its reach."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from provisioning.engine import selectors, services
from tests.factories import count, execute, make_auth_user
from tests.readme_sql import runtime_role_sql

pytestmark = pytest.mark.django_db

ROLE = "eloity_admin_least_privilege_test"
# The README's runtime role, as the README writes it; the dashboard's tables here belong to the
# test database's superuser, so the grants the owner's default privileges give are spelled out.
GRANTS = runtime_role_sql(ROLE).replace("SCHEMA eloity_admin,", f"SCHEMA {settings.DJANGO_SCHEMA},") + (
    f"GRANT SELECT, INSERT ON {settings.DJANGO_SCHEMA}.provisioning_auditevent TO {ROLE};"
    f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {settings.DJANGO_SCHEMA} TO {ROLE};"
    # The provisioning ledger, which every provisioning batch keeps (docs/performance.md).
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {settings.DJANGO_SCHEMA}.provisioning_ledgerentry, "
    f"{settings.DJANGO_SCHEMA}.provisioning_ledgerstate TO {ROLE};"
)


def test_status_and_provisioning_work_with_the_readme_grants(cli_actor):
    user_id = make_auth_user(keep=("users",))
    phone_only = make_auth_user(phone="15557770000", keep=())
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")

    counts = selectors.status_counts()
    result = services.provision_users(actor=cli_actor, user_ids=[user_id, phone_only])

    execute("RESET ROLE")
    assert counts.missing == {"users": 1, "profiles": 2, "wallets": 2}
    assert result.created == {"users": 0, "profiles": 2, "wallets": 2}
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]


def test_sync_and_orphan_removal_work_with_the_readme_grants(cli_actor):
    from provisioning.drift import services as drift_services

    moved = make_auth_user("grant-old@example.com")
    execute("UPDATE auth.users SET email = 'grant-new@example.com' WHERE id = %s", [moved])
    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")

    synced = drift_services.sync_values(actor=cli_actor, all_drifted=True)
    removed = drift_services.remove_orphans(actor=cli_actor)

    execute("RESET ROLE")
    assert synced.changed == {"users.email": 1} and removed.total == 3
    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]


def test_the_readme_grants_cannot_read_secrets_or_write_auth():
    make_auth_user()
    execute(GRANTS)
    execute(f"SET LOCAL ROLE {ROLE}")
    for statement in (
        "SELECT encrypted_password FROM auth.users LIMIT 1",
        "SELECT confirmation_token FROM auth.users LIMIT 1",
        "UPDATE auth.users SET email = 'x@example.com'",
    ):
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    execute("RESET ROLE")


def test_a_dashboard_role_without_bypassrls_is_a_problem_naming_the_grant():
    from provisioning.diagnostics.visibility import check_app_visibility

    make_auth_user()
    execute(GRANTS.replace("BYPASSRLS", "") + f"GRANT authenticated TO {ROLE}")
    execute(f"SET LOCAL ROLE {ROLE}")

    found = check_app_visibility()
    execute("RESET ROLE")

    assert found.status == "problem"
    assert (
        f"The dashboard's own role {ROLE} reads public.users, public.profiles, public.wallets through row level "
        "security" in found.found
    )
    assert f'ALTER ROLE "{ROLE}" BYPASSRLS;' in found.details["statements"]
    execute(f'ALTER ROLE "{ROLE}" BYPASSRLS')
    execute(f"SET LOCAL ROLE {ROLE}")
    fixed = check_app_visibility()
    execute("RESET ROLE")
    assert fixed.status == "ok", fixed.found
