"""The provisioning ledger (issue 24): counts kept in the dashboard's own schema equal the
live count once caught up, after any mix of writes: the dashboard's, the app's own inserts
and deletes, and sign-ups through the real trigger. Asserted on rows in PostgreSQL."""

from __future__ import annotations

import pytest
from django.utils import timezone

from provisioning.engine import ledger, selectors, services
from provisioning.models import LedgerEntry
from tests.factories import (
    disable_trigger,
    enable_trigger,
    execute,
    give_rows,
    make_auth_user,
    make_eloity_migration_shape,
    run_command,
)

pytestmark = pytest.mark.django_db


def figures(counts: selectors.StatusCounts) -> dict:
    return {
        "auth_users": counts.auth_users,
        "missing": counts.missing,
        "missing_any": counts.missing_any,
        "blocked_users": counts.blocked_users,
        "blocked": counts.blocked,
        "sample": [(r["user_id"], r["table"], r["reason"]) for r in counts.blocked_sample],
    }


def assert_ledger_equals_live() -> None:
    from_ledger = selectors.ledger_status_counts(sample=50)
    assert from_ledger.as_of is not None  # really read from the ledger
    assert figures(from_ledger) == figures(selectors.status_counts(sample=50))


def a_mixed_population() -> dict:
    return {
        "complete": make_auth_user(),
        "no_profile": make_auth_user(keep=("users", "wallets")),
        "nothing": make_auth_user(keep=()),
        "phone_only": make_auth_user(None, phone="15550001", keep=()),
        "deleted": make_auth_user(keep=(), deleted=True),
        "anonymous": make_auth_user(anonymous=True, keep=()),
        "twin_a": make_auth_user("twin@example.com", keep=(), is_sso_user=True),
        "no_wallet": make_auth_user(keep=("users", "profiles")),
        "complete_2": make_auth_user(),
    }


def test_rebuild_equals_the_live_count_and_keeps_only_users_missing_something():
    users = a_mixed_population()
    ledger.rebuild()
    assert_ledger_equals_live()
    kept = set(LedgerEntry.objects.values_list("user_id", flat=True))
    assert users["complete"] not in kept and users["deleted"] not in kept and users["anonymous"] not in kept
    assert users["no_profile"] in kept
    entry = LedgerEntry.objects.get(pk=users["no_profile"])
    assert entry.tables == ["profiles"] and entry.reasons == {}


def test_a_dashboard_write_updates_the_ledger_in_its_own_transaction(cli_actor):
    users = a_mixed_population()
    ledger.rebuild()
    services.provision_users(actor=cli_actor, user_ids=[users["nothing"], users["no_profile"]])
    kept = set(LedgerEntry.objects.values_list("user_id", flat=True))
    assert users["nothing"] not in kept and users["no_profile"] not in kept
    assert users["phone_only"] in kept
    assert_ledger_equals_live()  # no catch-up needed for the dashboard's own writes


def test_a_bulk_run_updates_the_ledger_without_a_catch_up(cli_actor):
    a_mixed_population()
    ledger.rebuild()
    services.provision_all_missing(actor=cli_actor)
    assert_ledger_equals_live()


def test_the_ledger_equals_the_live_count_after_any_mix_of_writes_once_caught_up(cli_actor):
    users = a_mixed_population()
    ledger.rebuild()
    # The dashboard's own write.
    services.provision_users(actor=cli_actor, user_ids=[users["no_wallet"]])
    # The app's own insert: the user leaves the ledger at the next catch-up.
    give_rows(users["no_profile"], ["profiles"])
    # The app's own delete, from a fully provisioned user (not in the ledger).
    execute("DELETE FROM public.wallets WHERE user_id = %s", [users["complete_2"]])
    # Sign-ups through the real trigger, one of them later stripped by the app.
    make_auth_user()
    stripped = make_auth_user()
    execute("DELETE FROM public.profiles WHERE user_id = %s", [stripped])
    make_auth_user("twin@example.com", keep=(), is_sso_user=True)
    # Users leaving: a hard delete and a soft delete.
    execute("DELETE FROM auth.users WHERE id = %s", [users["nothing"]])
    execute("UPDATE auth.users SET deleted_at = now() WHERE id = %s", [users["phone_only"]])
    ledger.catch_up()
    assert_ledger_equals_live()


def test_catch_up_rechecks_entries_and_new_signups_without_rebuilding():
    users = a_mixed_population()
    ledger.rebuild()
    give_rows(users["no_profile"], ["profiles"])
    disable_trigger()  # a sign-up the trigger missed (no app row is deleted: no rebuild)
    late = make_auth_user(keep=())
    enable_trigger()
    execute("UPDATE auth.users SET deleted_at = now() WHERE id = %s", [users["phone_only"]])
    done = ledger.catch_up()
    assert done.rebuilt is False
    kept = set(LedgerEntry.objects.values_list("user_id", flat=True))
    assert users["no_profile"] not in kept and users["phone_only"] not in kept and late in kept
    assert_ledger_equals_live()


def test_rows_the_app_deletes_from_a_provisioned_user_force_a_rebuild():
    users = a_mixed_population()
    ledger.rebuild()
    execute("DELETE FROM public.wallets WHERE user_id = %s", [users["complete"]])
    done = ledger.catch_up()
    assert done.rebuilt is True and "deleted" in done.why
    assert LedgerEntry.objects.get(pk=users["complete"]).tables == ["wallets"]
    assert_ledger_equals_live()


def test_a_spec_or_schema_change_forces_a_rebuild():
    a_mixed_population()
    ledger.rebuild()
    execute("ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL")
    assert selectors.ledger_state() is None  # built for another schema: counts are live
    done = ledger.catch_up()
    assert done.rebuilt is True and "schema" in done.why
    assert_ledger_equals_live()


def test_the_eloity_shape_ledger_equals_live(cli_actor):
    make_eloity_migration_shape()
    disable_trigger()  # the migration's trigger fills columns of the old shape
    for keep in [("users", "profiles", "wallets"), ("users",), (), ("users", "profiles")]:
        give_rows(make_auth_user(keep=()), keep)
    make_auth_user(None, phone="15550002", keep=())
    ledger.rebuild()
    assert_ledger_equals_live()
    services.provision_all_missing(actor=cli_actor)
    assert_ledger_equals_live()
    give_rows(make_auth_user(keep=()), ["users"])
    ledger.catch_up()
    assert_ledger_equals_live()


def test_provisioning_status_reads_the_ledger_and_says_how_fresh():
    a_mixed_population()
    code, out = run_command("provisioning_status")
    assert code == 0 and "counted live" in out  # no ledger yet
    state = ledger.rebuild()
    make_auth_user(keep=("users",))  # a sign-up the trigger half-provisioned: not seen yet
    code, out = run_command("provisioning_status")
    assert code == 0 and f"as of {timezone.localtime(state.caught_up_at):%H:%M:%S}" in out
    assert "missing any:                     5" in out
    code, exact = run_command("provisioning_status", "--exact")
    assert code == 0 and "counted live" in exact and "missing any:                     6" in exact
    ledger.catch_up()
    code, out = run_command("provisioning_status")
    assert "missing any:                     6" in out and "as of" in out


def test_the_ledger_command_rebuilds_and_catches_up():
    users = a_mixed_population()
    code, out = run_command("provisioning_ledger", "--rebuild")
    assert code == 0 and "ledger rebuilt" in out and "5 users missing rows" in out
    give_rows(users["no_profile"], ["profiles"])
    code, out = run_command("provisioning_ledger")
    assert code == 0 and "caught up" in out and "4 users missing rows" in out
    assert_ledger_equals_live()


def test_removing_an_orphan_that_held_an_email_unblocks_the_user_in_the_ledger(cli_actor):
    from provisioning.drift import services as drift_services

    gone = make_auth_user("taken@example.com")
    execute("DELETE FROM auth.users WHERE id = %s", [gone])  # its app rows stay: orphans
    disable_trigger()  # it would fail on the email the orphan holds
    waiting = make_auth_user("taken@example.com", keep=())
    enable_trigger()
    ledger.rebuild()
    assert "users" in LedgerEntry.objects.get(pk=waiting).reasons
    drift_services.remove_orphans(actor=cli_actor)
    entry = LedgerEntry.objects.get(pk=waiting)
    assert entry.reasons == {} and set(entry.tables) == {"users", "profiles", "wallets"}
    assert_ledger_equals_live()


def test_the_health_checks_read_the_ledger_and_say_as_of_when():
    from provisioning import diagnostics

    a_mixed_population()
    report = diagnostics.run_checks()
    blocked = next(c for c in report.checks if c.name == "Users that cannot be provisioned")
    assert "(counted live)" in blocked.found
    state = ledger.rebuild()
    report = diagnostics.run_checks()
    blocked = next(c for c in report.checks if c.name == "Users that cannot be provisioned")
    coverage = next(c for c in report.checks if c.name == "Sign-ups missing rows")
    as_of = f"from the provisioning ledger, as of {timezone.localtime(state.caught_up_at):%H:%M:%S}"
    assert as_of in blocked.found and as_of in coverage.found
    assert blocked.details["users"] == selectors.blocked_summary().users == 1
