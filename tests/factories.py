"""Build auth users and app rows with SQL, through the real sign-up trigger."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable

from django.db import connection

ALL_TABLES = ("users", "profiles", "wallets")
_counter = itertools.count(1)


def make_auth_user(
    email: str | None = "auto",
    *,
    keep: Iterable[str] = ALL_TABLES,
    phone: str | None = None,
    anonymous: bool = False,
    deleted: bool = False,
    is_sso_user: bool = False,
    meta: dict | None = None,
    secrets: str | None = None,
    created_at: str | None = None,
    provider: str | None = None,
    confirmed: bool = False,
) -> uuid.UUID:
    """Insert one auth user (the trigger provisions it), then delete the app rows not in
    `keep`. `secrets` fills the password hash and every token column with a marker;
    `provider` goes into raw_app_meta_data as Supabase writes it."""
    n = next(_counter)
    user_id = uuid.uuid4()
    if email == "auto":
        email = None if (anonymous or phone) else f"person{n}-{user_id.hex[:6]}@example.com"
    import json

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO auth.users (id, aud, role, email, phone, is_anonymous, is_sso_user,
                deleted_at, raw_user_meta_data, raw_app_meta_data, email_confirmed_at, created_at, updated_at,
                encrypted_password,
                confirmation_token, recovery_token, email_change_token_new,
                email_change_token_current, phone_change_token, reauthentication_token)
            VALUES (%s, 'authenticated', 'authenticated', %s, %s, %s, %s,
                CASE WHEN %s THEN now() END, %s::jsonb, %s::jsonb, CASE WHEN %s THEN now() END,
                COALESCE(%s::timestamptz, now()), now(), %s,
                %s, %s, %s, %s, %s, %s)
            """,
            [
                user_id,
                email,
                phone,
                anonymous,
                is_sso_user,
                deleted,
                json.dumps(meta or {}),
                json.dumps({"provider": provider, "providers": [provider]} if provider else {}),
                confirmed,
                created_at,
                secrets or "$2a$10$notarealhash",
                *([f"{secrets}-token"] * 6 if secrets else [""] * 6),
            ],
        )
        keep = set(keep)
        for table, key in (("users", "id"), ("profiles", "user_id"), ("wallets", "user_id")):
            if table not in keep:
                cursor.execute(f"DELETE FROM public.{table} WHERE {key} = %s", [user_id])
    return user_id


def rows(table: str, user_id: uuid.UUID) -> list[dict]:
    key = "id" if table == "users" else "user_id"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM public.{table} WHERE {key} = %s", [user_id])
        names = [c.name for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def count(table: str, user_ids: Iterable[uuid.UUID] | None = None) -> int:
    key = "id" if table == "users" else "user_id"
    with connection.cursor() as cursor:
        if user_ids is None:
            cursor.execute(f"SELECT count(*) FROM public.{table}")
        else:
            cursor.execute(f"SELECT count(*) FROM public.{table} WHERE {key} = ANY(%s)", [list(user_ids)])
        return cursor.fetchone()[0]


def execute(statement: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def truncate_app_tables() -> None:
    # The account's auth tables (identities, sessions, factors...) reference auth.users.
    execute(
        "TRUNCATE auth.users, auth.identities, auth.sessions, auth.refresh_tokens, auth.mfa_factors,"
        " auth.mfa_challenges, auth.audit_log_entries, public.users, public.profiles, public.wallets"
    )


def make_profiles_shape_b() -> None:
    """Replace public.profiles by shape B (user_id primary key, no id, fewer columns)."""
    execute(
        """
        DROP TABLE public.profiles;
        CREATE TABLE public.profiles (
            user_id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
            username text UNIQUE,
            full_name text,
            avatar_url text,
            bio text,
            is_verified boolean DEFAULT false,
            created_at timestamptz DEFAULT now(),
            updated_at timestamptz DEFAULT now()
        );
        """
    )


#: The demo schema's owner policies (provisioning/sql/app_schema.sql): each signed-in user
#: reads their own row.
OWNER_POLICIES = {
    "users": "Users read their own app user",
    "profiles": "Users read their own profile",
    "wallets": "Users read their own wallet",
}


def drop_owner_policy(table: str) -> None:
    """Drop the demo's owner policy on public.`table` (DDL: it rolls back with the test), for a
    test that builds its own policies, or changes the key column the policy reads."""
    execute(f'DROP POLICY IF EXISTS "{OWNER_POLICIES[table]}" ON public.{table}')


def disable_trigger() -> None:
    execute("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_created")


def enable_trigger() -> None:
    execute("ALTER TABLE auth.users ENABLE TRIGGER on_auth_user_created")


def make_many_auth_users(n: int, *, prefix: str = "bulk") -> list[uuid.UUID]:
    """Insert `n` email sign-ups in one statement (through the trigger); return their ids."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth.users (id, aud, role, email, created_at, updated_at) "
            "SELECT gen_random_uuid(), 'authenticated', 'authenticated', %s || i || '@example.com', now(), now() "
            "FROM generate_series(1, %s) AS i RETURNING id",
            [f"{prefix}-{uuid.uuid4().hex[:6]}-", n],
        )
        return [row[0] for row in cursor.fetchall()]


def run_command(*args) -> tuple[int, str]:
    """call_command, returning (exit code, stdout or the error's one line)."""
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except SystemExit as exc:
        return exc.code, out.getvalue()
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


#: The Eloity trigger as it broke sign-ups: it writes wallets.sol_balance, which does not exist.
SOL_BALANCE_TRIGGER = """
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = '' AS $$
BEGIN
    INSERT INTO public.users (id, email) VALUES (NEW.id, NEW.email) ON CONFLICT (id) DO NOTHING;
    INSERT INTO public.profiles (user_id, role) VALUES (NEW.id, 'user') ON CONFLICT (user_id) DO NOTHING;
    INSERT INTO public.wallets (user_id, btc_balance, sol_balance) VALUES (NEW.id, 0, 0)
        ON CONFLICT (user_id) DO NOTHING;
    RETURN NEW;
END;
$$;
"""


def break_schema(broken: str) -> None:
    """Break the demo schema one of the ways Eloity's sign-ups broke (DDL: it rolls back with
    the test's transaction)."""
    if broken == "trigger dropped":
        execute("DROP TRIGGER on_auth_user_created ON auth.users")
    elif broken == "trigger and function dropped":
        execute("DROP TRIGGER on_auth_user_created ON auth.users; DROP FUNCTION public.handle_new_user()")
    elif broken == "trigger disabled":
        disable_trigger()
    elif broken == "trigger writes a missing column":
        execute(SOL_BALANCE_TRIGGER)
    elif broken == "profiles shape B":
        make_profiles_shape_b()
    elif broken == "no unique index on profiles.user_id":
        execute("DROP INDEX public.profiles_user_id_key")
    elif broken == "orphan wallet":
        execute("INSERT INTO public.wallets (user_id) VALUES (%s)", [uuid.uuid4()])
    elif broken == "duplicate profile":
        user_id = make_auth_user()
        execute("DROP INDEX public.profiles_user_id_key")  # the trigger's ON CONFLICT needs it: drop it after
        execute("INSERT INTO public.profiles (user_id) VALUES (%s)", [user_id])
    else:
        raise AssertionError(broken)


def make_chained_shape() -> None:
    """Turn the demo schema into the chained shape: profiles and wallets reference
    public.users(id), public.users.password is NOT NULL with no default (the demo's own
    provisioning/sql/chained_shape.sql; DDL, so it rolls back with the test)."""
    from provisioning import demo

    execute(demo.read_sql("chained_shape.sql"))


def make_eloity_migration_shape() -> None:
    """The Eloity app's own tables, column for column as its drizzle migration creates them
    (tests/sql/eloity_migration_shape.sql): public.users is id, email, password (NOT NULL,
    no default), email_confirmed, created_at, updated_at and nothing more; profiles and
    wallets reference it ON DELETE CASCADE, with no index at all on their user_id. The rows
    already there are kept; a sign-up after this fails, as Eloity's did (DDL: it rolls back
    with the test)."""
    from pathlib import Path

    execute((Path(__file__).parent / "sql" / "eloity_migration_shape.sql").read_text())


def give_rows(user_id: uuid.UUID, tables: Iterable[str], *, email: str | None = None) -> None:
    """Write `user_id`'s rows in `tables` by hand, parents first, in whichever shape the app
    tables have (only the columns every shape has, and the migration's NOT NULL password)."""
    from provisioning.engine import catalog

    with connection.cursor() as cursor:
        if "users" in tables:
            has_password = "password" in catalog.columns("public", "users")
            cursor.execute(
                "INSERT INTO public.users (id, email"
                + (", password" if has_password else "")
                + ") VALUES (%s, %s"
                + (", 'a-hash-the-app-wrote'" if has_password else "")
                + ")",
                [user_id, email or f"{user_id.hex[:12]}@example.com"],
            )
        for table in ("profiles", "wallets"):
            if table in tables:
                cursor.execute(f"INSERT INTO public.{table} (user_id) VALUES (%s)", [user_id])
