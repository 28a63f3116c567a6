"""provisioning_trigger_sql: the generated sign-up trigger applies cleanly to each broken copy
of the schema, and a real sign-up then gets its rows in all three app tables."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from provisioning import diagnostics
from provisioning.engine import triggergen
from tests.factories import (
    ALL_TABLES,
    break_schema,
    count,
    disable_trigger,
    execute,
    make_auth_user,
    make_profiles_shape_b,
)

pytestmark = pytest.mark.django_db


BROKEN = [
    "trigger and function dropped",
    "trigger disabled",
    "trigger writes a missing column",
    "profiles shape B",
    "no unique index on profiles.user_id",
    "orphan wallet",
    "duplicate profile",
]


@pytest.mark.parametrize("broken", BROKEN)
def test_generated_trigger_applies_to_a_broken_copy_and_provisions_a_real_signup(broken):
    break_schema(broken)

    execute(triggergen.trigger_sql())
    user_id = make_auth_user()
    phone_only = make_auth_user(phone="15550199")

    assert [count(t, [user_id]) for t in ALL_TABLES] == [1, 1, 1]
    # public.users.email is NOT NULL: a phone-only sign-up gets no app user, but still signs up.
    assert [count(t, [phone_only]) for t in ALL_TABLES] == [0, 1, 1]
    assert diagnostics.check_trigger().ok
    assert diagnostics.check_function().status == diagnostics.OK


def test_generated_trigger_is_idempotent_for_a_second_insert_of_the_same_rows():
    execute("DROP INDEX public.profiles_user_id_key")
    execute(triggergen.trigger_sql())
    user_id = make_auth_user()

    # Re-running the function's inserts for the same user (as a retried sign-up would) adds nothing.
    execute("DELETE FROM auth.users WHERE id = %s", [user_id])
    execute(
        "INSERT INTO auth.users (id, aud, role, email, created_at) VALUES (%s, 'a', 'a', %s, now())",
        [user_id, f"again-{user_id.hex[:6]}@example.com"],
    )

    assert [count(t, [user_id]) for t in ALL_TABLES] == [1, 1, 1]


def test_on_conflict_only_where_the_key_is_unique():
    execute("DROP INDEX public.profiles_user_id_key")

    text = triggergen.trigger_sql()

    assert "ON CONFLICT (id) DO NOTHING" in text
    assert "ON CONFLICT (user_id) DO NOTHING" in text  # wallets
    profiles = text[text.index("INSERT INTO public.profiles") : text.index("INSERT INTO public.wallets")]
    assert "ON CONFLICT" not in profiles
    assert "WHERE NOT EXISTS (SELECT 1 FROM public.profiles x WHERE x.user_id = NEW.id)" in profiles


def test_generated_trigger_writes_only_columns_that_exist():
    make_profiles_shape_b()

    text = triggergen.trigger_sql()

    profiles = text[text.index("INSERT INTO public.profiles") : text.index("INSERT INTO public.wallets")]
    assert "preferences" not in profiles
    assert "role" not in profiles
    assert "lacks role, status, preferences, points, level" in text
    assert "sol_balance" not in text


def test_generated_trigger_has_the_shape_supabase_needs():
    text = triggergen.trigger_sql()

    assert "CREATE OR REPLACE FUNCTION public.handle_new_user()" in text
    assert "SECURITY DEFINER" in text
    assert "SET search_path = ''" in text
    assert "IF NEW.email IS NOT NULL THEN" in text
    assert "DROP TRIGGER IF EXISTS on_auth_user_created ON auth.users;" in text
    assert "AFTER INSERT ON auth.users" in text


def test_a_table_that_cannot_be_written_is_left_out_with_the_reason():
    execute("ALTER TABLE public.wallets ADD COLUMN kyc_level integer NOT NULL")

    text = triggergen.trigger_sql()

    assert "-- public.wallets skipped: public.wallets.kyc_level is NOT NULL with no default" in text
    assert "INSERT INTO public.wallets" not in text
    execute(text)
    user_id = make_auth_user()
    assert [count(t, [user_id]) for t in ALL_TABLES] == [1, 1, 0]


def test_command_prints_the_sql_and_runs_nothing():
    disable_trigger()
    out = StringIO()

    call_command("provisioning_trigger_sql", stdout=out)

    assert out.getvalue() == triggergen.trigger_sql().replace(_stamp(triggergen.trigger_sql()), _stamp(out.getvalue()))
    assert "CREATE TRIGGER on_auth_user_created" in out.getvalue()
    # Printing it changed nothing: the trigger is still disabled.
    assert diagnostics.check_trigger().status == diagnostics.PROBLEM


def _stamp(text: str) -> str:
    line = text.splitlines()[1]
    return line[line.index("(") :]


@pytest.mark.parametrize("shape", ["chained demo shape", "Eloity migration shape"])
def test_the_generated_trigger_never_fails_a_sign_up_where_tables_reference_each_other(shape):
    """profiles and wallets reference public.users, whose NOT NULL password nobody fills:
    the generated function leaves the children out with their parent, so a sign-up succeeds
    (with no rows, which provisioning then reports) instead of failing on a foreign key."""
    from tests.factories import make_chained_shape, make_eloity_migration_shape

    (make_chained_shape if shape == "chained demo shape" else make_eloity_migration_shape)()

    generated = triggergen.trigger_sql()
    execute(generated)
    user_id = make_auth_user()
    phone_only = make_auth_user(phone="15550198")

    assert "public.profiles skipped: it needs its public.users row" in generated
    assert [count(t, [user_id]) for t in ALL_TABLES] == [0, 0, 0]
    assert [count(t, [phone_only]) for t in ALL_TABLES] == [0, 0, 0]


def test_a_child_row_waits_for_its_parent_row_where_the_parent_is_guarded():
    """With the password given a default, public.users is written for email sign-ups only
    (email NOT NULL): a phone-only sign-up then gets no profile or wallet instead of a
    foreign-key error, and an email sign-up gets all three."""
    from tests.factories import make_chained_shape

    make_chained_shape()
    execute("ALTER TABLE public.users ALTER COLUMN password SET DEFAULT 'set-by-the-app'")

    execute(triggergen.trigger_sql())
    user_id = make_auth_user()
    phone_only = make_auth_user(phone="15550197")

    assert [count(t, [user_id]) for t in ALL_TABLES] == [1, 1, 1]
    assert [count(t, [phone_only]) for t in ALL_TABLES] == [0, 0, 0]
