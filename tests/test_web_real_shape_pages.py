"""Every page, on both shapes of the Eloity tables, for users with and without each row.

The Eloity app's own migration makes `public.users` six columns wide (no username, no
full_name): a page that read a column the models assumed answered 500 for every user
there. Here each page is opened as an administrator, a support provisioner and a viewer,
on the richer demo shape and on the migration's shape (tests/sql/eloity_migration_shape.sql),
and what the detail page says about each row is checked against the rows in the database.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from provisioning.diagnostics.models import model_gaps
from tests.factories import count, execute, give_rows, make_auth_user, make_eloity_migration_shape

pytestmark = pytest.mark.django_db

TABLES = ("users", "profiles", "wallets")
#: The rows each person has. Under the migration's foreign keys a profile or a wallet needs
#: its app user, so the last combination exists only on the richer shape.
COMBINATIONS = {
    "nothing": (),
    "app user only": ("users",),
    "app user and profile": ("users", "profiles"),
    "app user and wallet": ("users", "wallets"),
    "every row": TABLES,
    "profile and wallet, no app user": ("profiles", "wallets"),
}
SHAPES = ("richer demo shape", "Eloity migration shape")
#: What give_rows stores in public.users.password where the table has it.
PASSWORD = "a-hash-the-app-wrote"


@pytest.fixture(params=SHAPES)
def people(request):
    """One email sign-up per combination of rows, and a phone-only one with nothing, on
    the shape asked for."""
    made = {
        name: make_auth_user(f"{name.replace(' ', '-').replace(',', '')}@example.com", keep=()) for name in COMBINATIONS
    }
    made["phone-only, nothing"] = make_auth_user(None, phone="15550001234", keep=())
    if request.param == "Eloity migration shape":
        make_eloity_migration_shape()
        del made["profile and wallet, no app user"]
    for name, user_id in made.items():
        give_rows(user_id, COMBINATIONS.get(name, ()), email=f"app-{name.replace(' ', '-')}@example.com")
    return request.param, made


def row_statuses(html: str) -> dict[str, str]:
    """The detail page's "Application rows" table: {table: "present" or "missing"}."""
    section = html.split('id="provisioning-status"', 1)[1].split("</table>", 1)[0]
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)[1:]:
        table = re.search(r"<code>public\.(\w+)</code>", row).group(1)
        found[table] = "missing" if "<strong>missing</strong>" in row else "present"
    return found


def pages(made: dict) -> list[str]:
    """Every page a support person opens (GET), for these people."""
    lists = ["", "?status=missing_any", "?status=complete", "?status=cannot", "?status=drifted"]
    lists += [f"?status=missing_{t}" for t in TABLES] + ["?q=example.com", "?q=15550001234", "?kind=everyone"]
    urls = [reverse("admin:index"), reverse("provisioning-health"), reverse("provisioning_jobs")]
    urls += [reverse("admin:provisioning_authuser_changelist") + query for query in lists]
    urls += [reverse("admin:provisioning_authuser_change", args=[user_id]) for user_id in made.values()]
    urls += [
        reverse("admin:provisioning_authuser_provision_all"),
        reverse("admin:provisioning_authuser_sync_all"),
        reverse("admin:provisioning_authuser_orphans"),
        reverse("admin:provisioning_auditevent_changelist"),
    ]
    for model in ("appuser", "profile", "wallet"):
        base = reverse(f"admin:provisioning_{model}_changelist")
        urls += [base, f"{base}?q=example", f"{base}?q={next(iter(made.values()))}"]
    # Each row's own page, for every person who has the row.
    urls += [reverse("admin:provisioning_appuser_change", args=[u]) for u in made.values() if count("users", [u])]
    urls += [reverse("admin:provisioning_profile_change", args=[u]) for u in made.values() if count("profiles", [u])]
    urls += [reverse("admin:provisioning_wallet_change", args=[u]) for u in made.values() if count("wallets", [u])]
    return urls


@pytest.mark.parametrize("who", ["admin_client", "provisioner_client", "viewer_client"])
def test_every_page_answers_on_both_shapes_for_users_with_and_without_each_row(request, who, people):
    from provisioning.actors import Actor
    from provisioning.engine import services
    from provisioning.models import AuditEvent

    shape, made = people
    # Events to open too: a run that provisions what it can (on the migration's shape
    # public.users.password stops it) and a preview.
    services.provision_users(actor=Actor.command_line(), user_ids=[made["nothing"], made["app user only"]])
    services.preview_all_missing(actor=Actor.command_line())
    events = [
        reverse("admin:provisioning_auditevent_change", args=[pk])
        for pk in AuditEvent.objects.values_list("pk", flat=True)
    ]
    client = request.getfixturevalue(who)
    for url in pages(made) + events + [reverse("admin:provisioning_auditevent_export")]:
        response = client.get(url)
        # A viewer may be refused the provisioning previews (a 403 page), never a 500.
        tool = any(part in url for part in ("provision-all", "sync-all", "orphans"))
        expected = {200, 403} if who == "viewer_client" and tool else {200}
        assert response.status_code in expected, (shape, who, url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert PASSWORD not in body.decode(), (shape, url)  # users.password is never shown


def test_the_detail_page_says_which_rows_exist_as_the_database_does(admin_client, people):
    shape, made = people
    for name, user_id in made.items():
        html = admin_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])).content.decode()
        in_database = {t: "present" if count(t, [user_id]) else "missing" for t in TABLES}
        assert row_statuses(html) == in_database, (shape, name)
        if in_database["users"] == "present":
            assert f"app-{name.replace(' ', '-')}@example.com" in html  # the row is named by its email
        if shape == "Eloity migration shape" and in_database["users"] == "present":
            # The migration's users has a password column: named as withheld, never read.
            assert re.search(r"Not shown \(they look secret\): <code>password</code>", html)
            assert "email_confirmed" in html


def test_the_app_user_list_shows_the_live_table_columns(admin_client, people):
    shape, made = people
    html = admin_client.get(reverse("admin:provisioning_appuser_changelist")).content.decode()
    headers = re.findall(r'<th scope="col"[^>]*>.*?<span>(.*?)</span>', html, re.S) or re.findall(
        r'<th scope="col"[^>]*>\s*<div class="text">(?:<a[^>]*>)?(.*?)(?:</a>)?</div>', html, re.S
    )
    headers = [re.sub(r"<[^>]+>", "", h).strip().lower() for h in headers]
    if shape == "Eloity migration shape":
        assert "email confirmed" in headers and "username" not in headers
    else:
        assert "username" in headers and "email confirmed" not in headers
    assert "password" not in headers
    # One row per app user in the database, each linked to its auth user.
    with_app_user = [u for u in made.values() if count("users", [u])]
    for user_id in with_app_user:
        assert str(user_id)[:8] in html


def test_app_table_search_reads_only_columns_the_table_has(admin_client, people):
    _, made = people
    user_id = made["every row"]
    response = admin_client.get(reverse("admin:provisioning_appuser_changelist") + "?q=app-every-row")
    assert response.status_code == 200 and str(user_id)[:8] in response.content.decode()
    # profiles have no email: a text term matches usernames and names only (none here).
    response = admin_client.get(reverse("admin:provisioning_profile_changelist") + "?q=app-every-row")
    assert response.status_code == 200 and str(user_id)[:8] not in response.content.decode()


def test_no_model_declares_a_column_the_live_tables_lack(people):
    assert model_gaps() == []


def test_a_model_column_the_table_lacks_is_named_by_check_and_by_the_doctor(admin_client):
    from io import StringIO

    from django.core.management import call_command

    from provisioning import diagnostics

    execute("ALTER TABLE auth.users RENAME COLUMN last_sign_in_at TO last_signed_in")
    gaps = [str(g) for g in model_gaps()]
    assert gaps == ["provisioning.AuthUser declares auth.users.last_sign_in_at, which the live table lacks"]

    out = StringIO()
    with pytest.raises(Exception) as failure:
        call_command("check", "--database", "default", stdout=out, stderr=out)
    assert "provisioning.E002" in str(failure.value) and "auth.users.last_sign_in_at" in str(failure.value)

    check = next(c for c in diagnostics.summary().checks if c.name == "Models against the live tables")
    assert check.status == diagnostics.PROBLEM and "auth.users.last_sign_in_at" in check.found


def test_an_app_table_the_database_lacks_is_said_on_its_list(admin_client):
    execute("DROP TABLE public.wallets")
    response = admin_client.get(reverse("admin:provisioning_wallet_changelist"), follow=True)
    assert response.status_code == 200
    assert "The table public.wallets does not exist in this database" in response.content.decode()


def test_columns_named_anything_are_listed_and_searched(admin_client):
    """Column names come from the live catalog and are quoted as identifiers: a quote or a
    percent sign in one is no SQL of its own."""
    user_id = make_auth_user("odd-columns@example.com")
    execute('ALTER TABLE public.users ADD COLUMN "nick""name" text, ADD COLUMN "per%cent" text')
    execute('UPDATE public.users SET "nick""name" = \'ada-quote\', "per%%cent" = \'ten\' WHERE id = %s', [user_id])
    execute('ALTER TABLE public.users RENAME COLUMN username TO "user\'name"')

    for query in ("", "?q=odd-columns"):
        response = admin_client.get(reverse("admin:provisioning_appuser_changelist") + query)
        assert response.status_code == 200, query
        assert str(user_id)[:8] in response.content.decode()
    page = admin_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])).content.decode()
    assert "ada-quote" in page and "ten" in page


@pytest.mark.parametrize(
    ("column", "secret"),
    [
        ("password", True),
        ("backup_seed", True),
        ("bank_account_number", True),
        ("api_key", True),
        ("recovery_mnemonic", True),
        ("card_number", True),
        ("pin", True),
        ("login_otp", True),
        ("password_salt", True),
        ("shipping_address", False),
        ("pinned_post", False),
        ("hashtag", False),
        ("email", False),
    ],
)
def test_which_column_names_look_secret(column, secret):
    from provisioning.engine.rows import is_secret

    assert is_secret(column) is secret
