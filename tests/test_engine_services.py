"""Provisioning services, against real PostgreSQL with the demo schema and trigger."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from django.db import connection, connections, transaction

from provisioning.actors import Actor
from provisioning.engine import services
from provisioning.models import AuditEvent
from tests.factories import (
    count,
    disable_trigger,
    enable_trigger,
    execute,
    make_auth_user,
    make_profiles_shape_b,
    rows,
)

pytestmark = pytest.mark.django_db


def test_writes_exactly_the_missing_rows_with_the_spec_values(cli_actor):
    complete = make_auth_user()
    no_profile = make_auth_user(keep=("users", "wallets"))
    nothing = make_auth_user(email="Mixed.Case@Example.com", keep=())

    result = services.provision_users(actor=cli_actor, user_ids=[complete, no_profile, nothing])

    assert result.created == {"users": 1, "profiles": 2, "wallets": 1}
    assert result.ok
    for user_id in (complete, no_profile, nothing):
        assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    (app_user,) = rows("users", nothing)
    assert app_user["email"] == "Mixed.Case@Example.com"
    assert (app_user["level"], app_user["role"], app_user["preferred_currency"]) == ("bronze", "user", "USDT")
    assert (app_user["points"], app_user["is_verified"], app_user["allow_notifications"]) == (0, False, True)
    (profile,) = rows("profiles", no_profile)
    assert (profile["role"], profile["status"], profile["level"]) == ("user", "active", "bronze")
    # Django's psycopg loader hands jsonb back as text.
    assert json.loads(profile["preferences"]) == {}
    (wallet,) = rows("wallets", nothing)
    assert wallet["usdt_balance"] == 0 and wallet["soft_points_balance"] == 0


def test_second_run_creates_nothing(cli_actor):
    user_id = make_auth_user(keep=())
    services.provision_users(actor=cli_actor, user_ids=[user_id])

    again = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert again.total_created == 0
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]


def test_dry_run_reports_what_a_real_run_writes_and_writes_nothing(cli_actor):
    ids = [make_auth_user(keep=()), make_auth_user(keep=("users",)), make_auth_user(phone="15550001", keep=())]
    before = {t: count(t) for t in ("users", "profiles", "wallets")}
    audit_before = AuditEvent.objects.count()

    dry = services.provision_users(actor=cli_actor, user_ids=ids, dry_run=True)

    assert {t: count(t) for t in ("users", "profiles", "wallets")} == before
    assert AuditEvent.objects.count() == audit_before + 1
    assert AuditEvent.objects.latest("id").outcome == AuditEvent.Outcome.DRY_RUN
    real = services.provision_users(actor=cli_actor, user_ids=ids)
    assert real.created == dry.created
    assert {t: sorted(v) for t, v in real.created_sample.items()} == {
        t: sorted(v) for t, v in dry.created_sample.items()
    }
    assert [n.as_dict() for n in real.not_provisioned] == [n.as_dict() for n in dry.not_provisioned]


def test_phone_only_user_is_reported_and_does_not_stop_its_batch(cli_actor):
    phone_only = make_auth_user(phone="15550002", keep=())
    other = make_auth_user(keep=())

    result = services.provision_users(actor=cli_actor, user_ids=[phone_only, other])

    assert [(n.user_id, n.table) for n in result.not_provisioned] == [(phone_only, "users")]
    assert "no email" in result.not_provisioned[0].reason
    assert count("users", [phone_only]) == 0
    assert count("profiles", [phone_only]) == 1 and count("wallets", [phone_only]) == 1
    assert [count(t, [other]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]


def test_email_taken_by_another_app_user_is_reported_not_raised(cli_actor):
    first = make_auth_user(email="shared@example.com")
    disable_trigger()  # the trigger itself would fail on the shared email
    sso_twin = make_auth_user(email="shared@example.com", is_sso_user=True, keep=())

    result = services.provision_users(actor=cli_actor, user_ids=[first, sso_twin])

    assert [(n.user_id, n.table) for n in result.not_provisioned] == [(sso_twin, "users")]
    assert result.not_provisioned[0].reason.startswith("email")
    assert count("profiles", [sso_twin]) == 1


def test_two_missing_users_sharing_an_email_dry_run_predicts_who_gets_the_row(cli_actor):
    disable_trigger()
    ids = sorted([make_auth_user(email="twin@example.com"), make_auth_user(email="twin@example.com", is_sso_user=True)])

    dry = services.provision_users(actor=cli_actor, user_ids=ids, tables=["users"], dry_run=True)
    real = services.provision_users(actor=cli_actor, user_ids=ids, tables=["users"])

    assert real.created_sample == dry.created_sample == {"users": [ids[0]]}
    assert [n.as_dict() for n in real.not_provisioned] == [n.as_dict() for n in dry.not_provisioned]
    assert [n.user_id for n in real.not_provisioned] == [ids[1]]
    assert count("users", ids) == 1


def test_a_missing_app_table_is_reported_and_the_other_tables_still_written(cli_actor):
    user_id = make_auth_user(keep=())
    disable_trigger()
    execute("DROP TABLE public.wallets")

    dry = services.provision_users(actor=cli_actor, user_ids=[user_id], dry_run=True)
    real = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert real.created == dry.created == {"users": 1, "profiles": 1, "wallets": 0}
    assert [(n.table, n.reason) for n in real.not_provisioned] == [("wallets", "table public.wallets does not exist")]
    assert [count(t, [user_id]) for t in ("users", "profiles")] == [1, 1]


def test_unknown_and_soft_deleted_users_are_reported(cli_actor):
    deleted = make_auth_user(deleted=True, keep=())
    ghost = uuid.uuid4()

    result = services.provision_users(actor=cli_actor, user_ids=[deleted, ghost])

    reasons = {(n.user_id, n.table): n.reason for n in result.not_provisioned}
    assert reasons[(ghost, "*")] == services.UNKNOWN_USER_REASON
    assert reasons[(deleted, "profiles")] == "auth user is soft-deleted"
    assert count("profiles", [deleted]) == 0


def test_tables_limit_what_is_written(cli_actor):
    user_id = make_auth_user(keep=())

    services.provision_users(actor=cli_actor, user_ids=[user_id], tables=["wallets"])

    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [0, 0, 1]


def test_unknown_table_is_refused_before_anything_is_written(cli_actor):
    user_id = make_auth_user(keep=())
    with pytest.raises(ValueError, match="unknown table"):
        services.provision_users(actor=cli_actor, user_ids=[user_id], tables=["accounts"])
    assert count("wallets", [user_id]) == 0


def test_all_missing_walks_every_batch_and_skips_deleted_and_anonymous(cli_actor):
    missing = [make_auth_user(keep=()) for _ in range(7)]
    anonymous = make_auth_user(anonymous=True, keep=())
    deleted = make_auth_user(deleted=True, keep=())

    result = services.provision_all_missing(actor=cli_actor, batch_size=3)

    assert result.batches >= 3
    for user_id in missing:
        assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    assert count("profiles", [anonymous, deleted]) == 0
    events = AuditEvent.objects.filter(run_id=result.run_id)
    assert events.count() == result.batches
    created = {t: set() for t in ("users", "profiles", "wallets")}
    for event in events:
        for table, ids in event.rows_created.items():
            created[table] |= set(ids)
    assert {str(u) for u in missing} <= created["profiles"]


def test_audit_event_records_actor_targets_and_rows():
    from django.contrib.auth.models import User

    staff = User.objects.create_user("auditor", is_superuser=True)
    user_id = make_auth_user(keep=("users",))
    actor = Actor(username="auditor", channel=AuditEvent.Channel.WEB, user=staff, address="10.1.2.3")

    result = services.provision_users(actor=actor, user_ids=[user_id])

    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])
    assert (event.actor_id, event.actor_username, event.client_address) == (staff.pk, "auditor", "10.1.2.3")
    assert event.action == AuditEvent.Action.PROVISION_USER
    assert event.outcome == AuditEvent.Outcome.SUCCEEDED
    assert event.target_user_ids == [user_id]
    assert event.rows_created == {"users": [], "profiles": [str(user_id)], "wallets": [str(user_id)]}


def test_audit_row_rolls_back_with_the_data(cli_actor):
    user_id = make_auth_user(keep=())
    audit_before = AuditEvent.objects.count()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        services.provision_users(actor=cli_actor, user_ids=[user_id])
        assert count("profiles", [user_id]) == 1
        raise Abort

    assert count("profiles", [user_id]) == 0
    assert AuditEvent.objects.count() == audit_before


def test_a_row_the_database_rejects_is_isolated_and_the_rest_of_the_batch_written(cli_actor):
    user_id = make_auth_user(keep=())
    # The wallet insert fails (a CHECK the spec's zero balance breaks): that row alone.
    execute("ALTER TABLE public.wallets ADD CONSTRAINT no_new_wallets CHECK (usdt_balance > 0) NOT VALID")

    result = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 0]
    (item,) = result.not_provisioned
    assert (item.table, item.user_id) == ("wallets", user_id)
    assert "no_new_wallets" in item.reason and "(SQLSTATE 23514)" in item.reason
    event = AuditEvent.objects.latest("id")
    assert event.outcome == AuditEvent.Outcome.PARTIAL
    assert event.rows_created == {"users": [str(user_id)], "profiles": [str(user_id)], "wallets": []}


def test_an_error_that_is_not_about_a_row_rolls_the_batch_back_and_stops(cli_actor):
    user_id = make_auth_user(keep=())
    # A refusal of the table itself (permission denied, SQLSTATE 42501), not of one row.
    execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'permission denied for table wallets' USING ERRCODE = '42501'; END $$; "
        "CREATE TRIGGER refuse BEFORE INSERT ON public.wallets FOR EACH ROW EXECUTE FUNCTION public.refuse()"
    )

    with pytest.raises(services.ProvisioningFailed, match="permission denied"):
        services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]
    event = AuditEvent.objects.latest("id")
    assert event.outcome == AuditEvent.Outcome.FAILED
    assert "permission denied" in event.detail["error"]
    assert event.rows_created == {}


def test_profiles_shape_b_is_provisioned_and_missing_columns_reported(cli_actor):
    user_id = make_auth_user(keep=("users", "wallets"))
    make_profiles_shape_b()

    result = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert result.created["profiles"] == 1
    assert sorted(result.skipped_columns["profiles"]) == ["level", "points", "preferences", "role", "status"]
    (profile,) = rows("profiles", user_id)
    assert profile["is_verified"] is False and "id" not in profile


def test_profiles_shape_a_without_unique_key_still_gets_one_row(cli_actor):
    execute("DROP INDEX public.profiles_user_id_key")
    disable_trigger()
    user_id = make_auth_user(keep=("users", "wallets"))

    services.provision_users(actor=cli_actor, user_ids=[user_id])
    services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert count("profiles", [user_id]) == 1


def test_spec_column_missing_from_live_table_is_skipped_and_reported(cli_actor):
    user_id = make_auth_user(keep=("users", "profiles"))
    execute("ALTER TABLE public.wallets DROP COLUMN soft_points_balance")

    result = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert result.skipped_columns == {"wallets": ["soft_points_balance"]}
    assert count("wallets", [user_id]) == 1


def test_required_column_the_spec_leaves_empty_blocks_that_table_only(cli_actor):
    user_id = make_auth_user(keep=())
    execute("ALTER TABLE public.wallets ADD COLUMN region text NOT NULL DEFAULT 'eu'")
    execute("ALTER TABLE public.wallets ALTER COLUMN region DROP DEFAULT")

    result = services.provision_users(actor=cli_actor, user_ids=[user_id])

    assert [(n.table, n.reason) for n in result.not_provisioned] == [
        ("wallets", "public.wallets.region is NOT NULL with no default and the spec does not fill it")
    ]
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 0]


def test_viewer_is_denied_and_the_denial_is_audited(viewer):
    user_id = make_auth_user(keep=())
    actor = Actor(username=viewer.username, channel=AuditEvent.Channel.WEB, user=viewer)

    with pytest.raises(services.ProvisioningDenied):
        services.provision_users(actor=actor, user_ids=[user_id])

    assert count("profiles", [user_id]) == 0
    assert AuditEvent.objects.latest("id").outcome == AuditEvent.Outcome.DENIED


@pytest.mark.usefixtures("clean_app_tables")
@pytest.mark.parametrize("unique_profiles", [True, False], ids=["unique-key", "no-unique-key"])
@pytest.mark.parametrize("all_missing", [False, True], ids=["given-users", "all-missing"])
def test_concurrent_runs_on_the_same_users_end_with_one_row_each(unique_profiles, all_missing):
    if not unique_profiles:
        execute("DROP INDEX public.profiles_user_id_key")
    try:
        disable_trigger()
        ids = [make_auth_user(keep=()) for _ in range(40)]
        enable_trigger()
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def work():
            try:
                barrier.wait()
                if all_missing:  # range batches: one INSERT ... SELECT per table per batch
                    services.provision_all_missing(actor=Actor.command_line(), batch_size=7)
                else:
                    services.provision_users(actor=Actor.command_line(), user_ids=ids, batch_size=7)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        for table, key in (("users", "id"), ("profiles", "user_id"), ("wallets", "user_id")):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT count(*), count(DISTINCT {key}) FROM public.{table} WHERE {key} = ANY(%s)", [ids]
                )
                assert cursor.fetchone() == (40, 40)
    finally:
        if not unique_profiles:
            execute("CREATE UNIQUE INDEX IF NOT EXISTS profiles_user_id_key ON public.profiles (user_id)")


@pytest.mark.usefixtures("clean_app_tables")
def test_bulk_run_beside_the_trigger_raises_nothing_and_duplicates_nothing():
    disable_trigger()
    for _ in range(30):
        make_auth_user(keep=())
    enable_trigger()
    errors: list[BaseException] = []

    def sign_ups():
        try:
            for _ in range(30):
                make_auth_user()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=sign_ups)
    thread.start()
    services.provision_all_missing(actor=Actor.command_line(), batch_size=5)
    thread.join()

    assert errors == []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM auth.users), (SELECT count(DISTINCT user_id) FROM public.profiles),"
            " (SELECT count(*) FROM public.profiles), (SELECT count(*) FROM public.wallets)"
        )
        assert cursor.fetchone() == (60, 60, 60, 60)


@pytest.mark.usefixtures("clean_app_tables")
def test_second_run_waits_for_an_open_run_instead_of_duplicating_keyless_profiles():
    # Shape A in the wild: nothing makes profiles.user_id unique, so only the advisory lock
    # stops a second run from inserting the same profile while the first is uncommitted.
    execute("DROP INDEX public.profiles_user_id_key")
    try:
        disable_trigger()
        ids = [make_auth_user(keep=()) for _ in range(5)]
        enable_trigger()
        first_wrote, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def first():
            try:
                with transaction.atomic():
                    services.provision_users(actor=Actor.command_line(), user_ids=ids, tables=["profiles"])
                    first_wrote.set()
                    release.wait(10)
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        def second():
            try:
                services.provision_users(actor=Actor.command_line(), user_ids=ids, tables=["profiles"])
            except BaseException as exc:
                errors.append(exc)
            finally:
                connections.close_all()

        t1 = threading.Thread(target=first)
        t1.start()
        assert first_wrote.wait(10)
        t2 = threading.Thread(target=second)
        t2.start()
        t2.join(1.0)
        assert t2.is_alive(), "the second run should wait for the first to commit"
        release.set()
        t1.join()
        t2.join()

        assert errors == []
        assert count("profiles", ids) == 5
    finally:
        execute("CREATE UNIQUE INDEX IF NOT EXISTS profiles_user_id_key ON public.profiles (user_id)")


def test_reasons_keep_a_percent_sign_as_is(cli_actor):
    from provisioning.engine import selectors

    user_id = make_auth_user(keep=("users", "profiles"))
    execute("ALTER TABLE public.wallets ADD COLUMN \"odd%col\" text NOT NULL DEFAULT 'x'")
    execute('ALTER TABLE public.wallets ALTER COLUMN "odd%col" DROP DEFAULT')

    result = services.provision_users(actor=cli_actor, user_ids=[user_id])
    blocked, sample = selectors.cannot_provision()

    assert "odd%col is NOT NULL" in result.not_provisioned[0].reason
    assert list(blocked) == [
        "wallets: public.wallets.odd%col is NOT NULL with no default and the spec does not fill it"
    ]
    assert sample[0]["user_id"] == str(user_id)


def test_preview_of_all_missing_agrees_with_the_full_dry_run(cli_actor):
    for keep in ((), ("users",), ("users", "profiles"), ("profiles", "wallets")):
        make_auth_user(keep=keep)
    make_auth_user(phone="15550900", keep=())
    make_auth_user(deleted=True, keep=())
    before = {t: count(t) for t in ("users", "profiles", "wallets")}

    preview = services.preview_all_missing(actor=cli_actor)
    full = services.provision_all_missing(actor=cli_actor, dry_run=True)

    assert preview.created == full.created
    assert preview.not_provisioned_count == full.not_provisioned_count == 1
    assert preview.users_processed == full.users_processed == 5
    assert {t: count(t) for t in ("users", "profiles", "wallets")} == before
    assert AuditEvent.objects.get(pk=preview.audit_event_ids[0]).target_user_ids == []


def test_all_missing_reports_users_a_table_refuses_and_writes_the_rest(cli_actor):
    phone_only = make_auth_user(phone="15550700", keep=())
    others = [make_auth_user(keep=("profiles",)) for _ in range(3)]

    result = services.provision_all_missing(actor=cli_actor, batch_size=2)

    assert [(n.user_id, n.table) for n in result.not_provisioned] == [(phone_only, "users")]
    assert result.created == {"users": 3, "profiles": 1, "wallets": 4}
    assert count("users", others) == 3 and count("wallets", [phone_only, *others]) == 4
