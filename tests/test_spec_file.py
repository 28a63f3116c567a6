"""The spec as a file: Eloity's default ships as provisioning/spec/eloity.toml, and
PROVISIONING_SPEC names another. A malformed file is one clear message naming the file and
the entry (exit 2 from every command, the health page in the browser); a fourth table
declared only in a file gets provisioning, CLI choices, status counts, diagnostics, its part
of the generated trigger, and its column, filter and row in the admin, with no code change.
Commands run in child processes: the spec is read once per process, like the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioning.spec.loader import DEFAULT_SPEC_FILE, SpecFileError, load
from tests.factories import count, execute, make_auth_user
from tests.processes import current_database_url, manage_env, run_manage

FOURTH_TABLE = """
[[table]]
name = "user_settings"
label = "settings row"
key = "user_id"

[table.values]
user_id = { auth = "id" }
theme = "dark"
display_name = { metadata = "full_name" }
created_at = { now = true }
"""


def spec_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "provisioning.toml"
    path.write_text(text)
    return path


# --- reading the file ----------------------------------------------------------------------


def test_the_default_spec_is_elotys_three_tables_in_write_order():
    specs = load(DEFAULT_SPEC_FILE)

    assert [(s.qualified_name, s.label, s.key) for s in specs] == [
        ("public.users", "app user", "id"),
        ("public.profiles", "profile", "user_id"),
        ("public.wallets", "wallet", "user_id"),
    ]
    users = specs[0].values
    assert users["email"].describe() == "auth.users.email" and users["preferred_currency"].describe() == "'USDT'"
    assert specs[1].values["preferences"].describe() == "'{}'::jsonb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[table]\nname = 'x'", "not valid TOML"),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nid = { authh = 'id' }",
            "column 'id': unknown value kind 'authh'",
        ),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nemail = { auth = 'email' }",
            "table 'users': the key column 'id' has no value",
        ),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\nschema = 'auth'\n[table.values]\nid = { auth = 'id' }",
            "schema 'auth' belongs to Supabase Auth",
        ),
        ("[[table]]\nname = 'users'\n[table.values]\nid = { auth = 'id' }", "table 'users': missing 'key'"),
        (
            "[[table]]\nname = 'users; drop'\nkey = 'id'\n[table.values]\nid = { auth = 'id' }",
            "is not a plain SQL name",
        ),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\nschema = 'eloity_admin'\n[table.values]\nid = { auth = 'id' }",
            "schema 'eloity_admin' holds the dashboard's own tables",
        ),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nid = { auth = 'id' }\n"
            "bio = { auth = 'encrypted_password' }",
            "table 'users', column 'bio': auth.users.encrypted_password holds a secret",
        ),
        (
            "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nid = { auth = 'id' }\n"
            "website = { auth = 'Recovery_Token' }",
            "table 'users', column 'website': auth.users.Recovery_Token holds a secret",
        ),
        ("title = 'x'", "unknown top-level entry 'title'"),
        ("", "no [[table]] entries"),
    ],
)
def test_a_malformed_file_is_one_message_naming_the_file_and_the_entry(tmp_path, text, message):
    path = spec_file(tmp_path, text)

    with pytest.raises(SpecFileError) as raised:
        load(path)

    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)
    assert "\n" not in str(raised.value).split(": ", 1)[1] or "TOML" in str(raised.value)


# --- a malformed file stops every command and the web pages show it ---------------------------


def test_a_malformed_file_makes_every_command_exit_2_with_one_line(tmp_path):
    path = spec_file(tmp_path, "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nid = { nope = 1 }")
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))

    for args in (["check"], ["provisioning_status"], ["provision", "--all-missing"], ["provisioning_doctor"]):
        done = run_manage(*args, env=env)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "unknown value kind 'nope'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "column", ["encrypted_password", "recovery_token", "confirmation_token", "reauthentication_token"]
)
def test_a_file_copying_a_secret_auth_column_is_refused_by_every_command(tmp_path, column):
    """Nothing is provisioned and no trigger is generated: one line naming the file, the
    entry and the column, exit 2."""
    text = DEFAULT_SPEC_FILE.read_text().replace('email = { auth = "email" }', f'email = {{ auth = "{column}" }}', 1)
    path = spec_file(tmp_path, text)
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))
    for command in (("provision", "--all-missing"), ("provisioning_trigger_sql",), ("provisioning_status",)):
        done = run_manage(*command, env=env)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert f"table 'users', column 'email': auth.users.{column} holds a secret" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and f"NEW.{column}" not in done.stdout


def test_a_file_naming_a_table_the_database_lacks_is_refused(tmp_path):
    path = spec_file(tmp_path, DEFAULT_SPEC_FILE.read_text() + FOURTH_TABLE)
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))

    done = run_manage("provisioning_status", env=env)

    assert done.returncode == 2
    assert f"{path}: table 'user_settings': public.user_settings does not exist in the database" in done.stderr


def test_the_web_pages_lead_to_the_health_page_which_shows_the_files_mistake(tmp_path):
    path = spec_file(tmp_path, "[[table]]\nname = 'users'\nkey = 'id'\n[table.values]\nid = { nope = 1 }")
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))
    script = (
        "from django.contrib.auth.models import User; from django.test import Client; "
        "from django.test.utils import setup_test_environment; setup_test_environment(); "
        "u = User.objects.create(username='spec-check', is_staff=True, is_superuser=True); "
        "c = Client(); c.force_login(u); "
        "r = c.get('/admin/provisioning/authuser/'); h = c.get('/admin/tools/health/'); "
        "print(r.status_code, r.get('Location')); print(h.status_code); print(h.content.decode()); u.delete()"
    )

    done = run_manage("shell", "-v", "0", "-c", script, env=env)

    lines = done.stdout.splitlines()
    assert lines[0] == "302 /admin/tools/health/", done.stdout + done.stderr
    assert lines[1] == "503"
    assert "The provisioning spec cannot be used" in done.stdout and "unknown value kind" in done.stdout


# --- a fourth table, declared only in the file ---------------------------------------------------


@pytest.fixture
def user_settings_table(clean_app_tables):
    execute(
        "CREATE TABLE public.user_settings (id bigserial PRIMARY KEY, user_id uuid UNIQUE NOT NULL, "
        "theme text NOT NULL, display_name text, created_at timestamptz)"
    )
    yield
    execute("DROP TABLE public.user_settings")


@pytest.mark.django_db(transaction=True)
def test_a_fourth_table_in_the_file_is_provisioned_counted_diagnosed_and_generated(tmp_path, user_settings_table):
    lacks_settings = [make_auth_user(meta={"full_name": "Ada Settings"}) for _ in range(3)]
    path = spec_file(tmp_path, DEFAULT_SPEC_FILE.read_text() + FOURTH_TABLE)
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))

    status = json.loads(run_manage("provisioning_status", "--json", env=env).stdout)
    assert status["missing"]["user_settings"] == 3

    dry = run_manage("provision", "--all-missing", "--table", "user_settings", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Would create 3 settings rows for 3 users." in dry.stdout
    assert count_settings() == 0

    real = run_manage("provision", "--all-missing", env=env)
    assert real.returncode == 0, real.stderr
    assert "Created 3 settings rows for 3 users." in real.stdout
    assert count_settings() == 3
    assert [count(t, lacks_settings) for t in ("users", "profiles", "wallets")] == [3, 3, 3]

    trigger = run_manage("provisioning_trigger_sql", env=env).stdout
    assert "INSERT INTO public.user_settings" in trigger and "NEW.raw_user_meta_data ->> 'full_name'" in trigger
    doctor = json.loads(run_manage("provisioning_doctor", "--json", env=env).stdout)
    assert "Table public.user_settings" in [c["name"] for c in doctor["checks"]]


def count_settings() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM public.user_settings WHERE theme = 'dark'")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_fourth_table_gets_its_column_filter_and_row_in_the_admin(tmp_path, user_settings_table):
    user_id = make_auth_user()
    path = spec_file(tmp_path, DEFAULT_SPEC_FILE.read_text() + FOURTH_TABLE)
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(path))
    script = (
        "from django.test.utils import setup_test_environment; setup_test_environment(); "
        "from django.contrib.auth.models import User; from django.test import Client; "
        "u = User.objects.create(username='spec-admin', is_staff=True, is_superuser=True); "
        "c = Client(); c.force_login(u); "
        "page = c.get('/admin/provisioning/authuser/?status=missing_user_settings').content.decode(); "
        f"detail = c.get('/admin/provisioning/authuser/{user_id}/change/').content.decode(); "
        "print('column', 'Settings row' in page); print('filter', 'Missing settings row' in page); "
        f"print('listed', '{user_id}'[:8] in page or 'person' in page); "
        "print('row', 'public.user_settings' in detail); u.delete()"
    )

    done = run_manage("shell", "-v", "0", "-c", script, env=env)

    assert done.stdout.split() == ["column", "True", "filter", "True", "listed", "True", "row", "True"], (
        done.stdout + done.stderr
    )


# --- a spec table in another schema, with another key -------------------------------------------

APP_SCHEMA_SPEC = """
[[table]]
name = "users"
schema = "app"
label = "app account"
key = "auth_id"

[table.values]
auth_id = { auth = "id" }
email = { auth = "email" }
"""


@pytest.fixture
def app_schema_users(clean_app_tables):
    execute("CREATE SCHEMA app; CREATE TABLE app.users (auth_id uuid PRIMARY KEY, email text, nickname text)")
    yield
    execute("DROP SCHEMA app CASCADE")


@pytest.mark.django_db(transaction=True)
def test_a_spec_table_in_another_schema_is_read_there_by_its_own_key(tmp_path, app_schema_users):
    """The user's page and the list read app.users by auth_id, never public.users by id
    (a model of public.users once answered for any spec table named "users")."""
    in_app = make_auth_user()  # public.users has this one too (the demo trigger wrote it)
    execute(
        "INSERT INTO app.users (auth_id, email, nickname) VALUES (%s, 'in-app-schema@example.com', 'ada')", [in_app]
    )
    only_public = make_auth_user()  # a public.users row, none in app.users
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(spec_file(tmp_path, APP_SCHEMA_SPEC)))
    script = (
        "from django.test.utils import setup_test_environment; setup_test_environment(); "
        "from django.contrib.auth.models import User; from django.test import Client; "
        "u = User.objects.create(username='spec-schema', is_staff=True, is_superuser=True); "
        "c = Client(); c.force_login(u); "
        f"a = c.get('/admin/provisioning/authuser/{in_app}/change/').content.decode(); "
        f"b = c.get('/admin/provisioning/authuser/{only_public}/change/').content.decode(); "
        "m = c.get('/admin/provisioning/authuser/?status=missing_users').content.decode(); "
        "lst = c.get('/admin/provisioning/appuser/').content.decode(); "
        "print('list_says', 'The spec provisions app.users (keyed by auth_id); this list shows public.users' in lst); "
        "print('in_app', 'app.users' in a, 'in-app-schema@example.com' in a, 'nickname' in a); "
        "print('only_public', '<strong>missing</strong>' in b); "
        f"print('listed_missing', '{only_public}'[:8] in m, '{in_app}'[:8] in m); u.delete()"
    )

    done = run_manage("shell", "-v", "0", "-c", script, env=env)

    assert done.stdout.split() == [
        "list_says", "True",
        "in_app", "True", "True", "True",
        "only_public", "True",
        "listed_missing", "True", "False",
    ], done.stdout + done.stderr  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_secret_looking_app_column_the_spec_fills_is_never_compared_shown_or_synced(tmp_path, clean_app_tables):
    """A spec may fill the migration's NOT NULL users.password (here with the user's id);
    the value the app keeps there is never on the drifted list, a page, a sync or its event."""
    from tests.factories import give_rows, make_eloity_migration_shape

    user_id = make_auth_user(keep=())
    make_eloity_migration_shape()
    give_rows(user_id, ("users",))
    execute("UPDATE public.users SET password = 'PWSECRET-hash' WHERE id = %s", [user_id])
    text = DEFAULT_SPEC_FILE.read_text().replace(
        'email = { auth = "email" }', 'email = { auth = "email" }\npassword = { auth = "id" }', 1
    )
    env = manage_env(database_url=current_database_url(), PROVISIONING_SPEC=str(spec_file(tmp_path, text)))
    try:
        script = (
            "from django.test.utils import setup_test_environment; setup_test_environment(); "
            "from django.contrib.auth.models import User; from django.test import Client; "
            "from provisioning.drift.columns import copied_columns; "
            "u = User.objects.create(username='spec-secret', is_staff=True, is_superuser=True); "
            "c = Client(); c.force_login(u); "
            "pages = [c.get('/admin/provisioning/authuser/?status=drifted').content.decode(), "
            f"c.get('/admin/provisioning/authuser/{user_id}/change/').content.decode()]; "
            "print('copied', sorted(x.name for x in copied_columns())); "
            "print('shown', any('PWSECRET' in p for p in pages)); u.delete()"
        )
        done = run_manage("shell", "-v", "0", "-c", script, env=env)
        sync = run_manage("sync_values", "--user", str(user_id), "--json", env=env)
    finally:
        from provisioning import demo

        demo.drop_demo_tables()
        demo.install_schema()

    assert "copied ['users.email']" in done.stdout, done.stdout + done.stderr
    assert "shown False" in done.stdout
    assert "PWSECRET" not in sync.stdout + sync.stderr
