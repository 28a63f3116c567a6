"""The CLI: provisioning_status and provision, their output and exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from provisioning.models import AuditEvent
from tests.factories import count, make_auth_user
from tests.factories import run_command as run
from tests.processes import manage_env, run_manage

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def test_status_counts_match_the_database():
    make_auth_user()
    make_auth_user(keep=("users",))
    make_auth_user(phone="15550100", keep=())
    make_auth_user(deleted=True, keep=())

    code, out = run("provisioning_status", "--json")

    assert code == 0
    data = json.loads(out)
    assert data["auth_users"] == 3
    assert data["missing"] == {"users": 1, "profiles": 2, "wallets": 2}
    assert data["missing_any"] == 2
    assert data["fully_provisioned"] == 1
    assert sum(data["cannot_provision"].values()) == 1


def test_provision_by_email_exits_0_and_records_the_os_user():
    user_id = make_auth_user(email="Cli.User@Example.com", keep=())

    code, out = run("provision", "--user", "cli.user@example.com")

    assert code == 0, out
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    event = AuditEvent.objects.latest("id")
    assert event.channel == AuditEvent.Channel.CLI
    assert event.actor_username.startswith("os:")
    assert event.actor is None


def test_dry_run_json_writes_nothing():
    user_id = make_auth_user(keep=())

    code, out = run("provision", "--user", str(user_id), "--dry-run", "--json")

    assert code == 0
    assert json.loads(out)["created"] == {"users": 1, "profiles": 1, "wallets": 1}
    assert count("profiles", [user_id]) == 0


def test_table_option_limits_the_run():
    user_id = make_auth_user(keep=())
    assert run("provision", "--user", str(user_id), "--table", "profiles")[0] == 0
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [0, 1, 0]


def test_unprovisionable_user_exits_1():
    phone_only = make_auth_user(phone="15550101", keep=())
    code, out = run("provision", "--user", str(phone_only))
    assert code == 1
    assert "no email" in out
    assert count("profiles", [phone_only]) == 1


def test_all_missing_in_batches():
    ids = [make_auth_user(keep=()) for _ in range(5)]
    code, out = run("provision", "--all-missing", "--batch-size", "2", "--json")
    assert code == 0
    assert json.loads(out)["batches"] == 3
    assert count("wallets", ids) == 5


@pytest.mark.parametrize(
    "args",
    [
        ("provision", "--user", "nobody@example.com"),
        ("provision", "--user", "00000000-0000-0000-0000-000000000001"),
        ("provision", "--all-missing", "--batch-size", "0"),
    ],
)
def test_bad_arguments_exit_2(args):
    code, _ = run(*args)
    assert code == 2


def _manage(*args, env_extra=None) -> subprocess.CompletedProcess:
    return run_manage(*args, env=manage_env(**(env_extra or {})))


def test_unknown_table_exits_2_with_one_line():
    result = _manage("provision", "--all-missing", "--table", "accounts")
    assert result.returncode == 2
    assert "invalid choice: 'accounts'" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_exits_2_with_one_line():
    result = _manage("provisioning_status", env_extra={"DATABASE_URL": "postgres://nobody@127.0.0.1:1/nothing"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "database unreachable" in result.stderr


def test_an_email_shared_by_two_auth_users_is_refused_with_exit_2():
    make_auth_user(email="twin@example.com")
    from tests.factories import disable_trigger

    disable_trigger()
    twin = make_auth_user(email="twin@example.com", is_sso_user=True, keep=())

    code, message = run("provision", "--user", "twin@example.com")

    assert code == 2
    assert "give the id" in message
    assert count("profiles", [twin]) == 0


def test_status_counts_each_user_once_when_profiles_has_duplicates():
    from tests.factories import execute

    twice = make_auth_user()
    make_auth_user(keep=("users", "wallets"))
    execute("DROP INDEX public.profiles_user_id_key")
    execute("INSERT INTO public.profiles (user_id) VALUES (%s)", [twice])

    data = json.loads(run("provisioning_status", "--json")[1])

    assert (data["auth_users"], data["missing"]["profiles"], data["missing_any"]) == (2, 1, 1)


def test_status_counts_a_user_blocked_in_several_tables_once():
    from tests.factories import make_chained_shape

    make_auth_user(keep=())
    phone_only = make_auth_user(None, phone="15550112", keep=())
    make_auth_user(keep=("users",))
    make_chained_shape()

    data = json.loads(run("provisioning_status", "--json")[1])
    code, out = run("provisioning_status")

    assert data["cannot_provision_users"] == 2
    assert sum(data["cannot_provision"].values()) == 6  # rows: users, by table and reason
    assert code == 0
    assert "cannot be provisioned (users):   2" in out
    assert "missing rows they lack:          6" in out
    assert f"  {phone_only}  phone 15550112  users: " in out


def test_status_text_lists_the_users_that_cannot_be_provisioned():
    phone_only = make_auth_user(phone="15550111", keep=())

    code, out = run("provisioning_status")

    assert code == 0
    assert f"  {phone_only}  phone 15550111  users: auth user has no email" in out


def _with_id(user_id, new_id: str):
    """Give an auth user (without app rows) a chosen id: two ids sharing a short id."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE auth.users SET id = %s WHERE id = %s", [new_id, user_id])
    return new_id


def test_provision_takes_the_short_id_the_pages_show():
    user_id = make_auth_user(keep=())

    code, out = run("provision", "--user", str(user_id)[:8])

    assert code == 0, out
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]


def test_an_ambiguous_short_id_lists_the_matches_and_writes_nothing():
    first = _with_id(make_auth_user(email="first@example.com", keep=()), "52a34203-0000-4000-8000-000000000001")
    second = _with_id(make_auth_user(email="second@example.com", keep=()), "52a34203-ffff-4000-8000-000000000002")

    code, message = run("provision", "--user", "52A34203")

    assert code == 2
    assert "52A34203 matches 2 auth users" in message
    assert f"{first} (first@example.com)" in message and f"{second} (second@example.com)" in message
    assert "unknown user" not in message
    assert count("users", [first, second]) == 0


def test_provision_and_sync_take_a_phone_number_as_the_search_box_does():
    user_id = make_auth_user(email="by.phone@example.com", phone="15550142", keep=("users",))

    code, out = run("provision", "--user", "+1 555-0142")
    assert code == 0, out
    assert count("profiles", [user_id]) == 1

    code, out = run("sync_values", "--user", "+1 555-0142", "--dry-run")
    assert code == 0, out


def test_a_short_id_nobody_has_is_unknown():
    code, message = run("provision", "--user", "00000000")
    assert code == 2
    assert message == "unknown user: 00000000"


def test_provision_names_each_user_it_could_not_provision_as_the_pages_do():
    phone_only = make_auth_user(None, phone="15550177", keep=())

    code, out = run("provision", "--user", str(phone_only))

    assert code == 1
    assert f"not provisioned: {phone_only} (phone 15550177) public.users: auth user has no email" in out
