"""The audit log: review in the admin, CSV export, append-only in the database, sign-ins."""

from __future__ import annotations

import csv
import io
import uuid
from urllib.parse import urlencode

import pytest
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from provisioning.actors import Actor
from provisioning.engine import services
from provisioning.models import AuditEvent
from tests.factories import make_auth_user

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
CHANGELIST = "admin:provisioning_auditevent_changelist"


def event(**fields) -> AuditEvent:
    values = {
        "actor_username": "alice",
        "channel": AuditEvent.Channel.WEB,
        "action": Action.PROVISION_USER,
        "outcome": Outcome.SUCCEEDED,
        **fields,
    }
    return AuditEvent.objects.create(**values)


def event_at(created_at: str, **fields) -> int:
    """An event with a chosen timestamp (auto_now_add would overwrite it through the ORM)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO provisioning_auditevent (created_at, actor_username, channel, action, outcome,
                target_user_ids, tables, rows_created, not_provisioned, detail)
            VALUES (%s, %s, 'cli', %s, 'succeeded', '{}', '{}', '{}', '[]', '{}') RETURNING id
            """,
            [created_at, fields.get("actor_username", "os:old"), fields.get("action", Action.PROVISION_ALL_MISSING)],
        )
        return cursor.fetchone()[0]


def listed(client, query: str = "") -> list[int]:
    response = client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200, response.status_code
    return [e.pk for e in response.context["cl"].result_list]


def csv_rows(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


# --- 1. review ---------------------------------------------------------------------------


def test_filters_by_action_outcome_channel_and_actor(viewer_client):
    login = event(action=Action.LOGIN, actor_username="bob")
    denied = event(outcome=Outcome.DENIED, actor_username="carol")
    cli = event(channel=AuditEvent.Channel.CLI, actor_username="os:deploy")
    plain = event()

    assert login.pk in listed(viewer_client, "?action=login")
    assert set(listed(viewer_client, "?action=login")) & {denied.pk, cli.pk, plain.pk} == set()
    assert listed(viewer_client, "?outcome=denied") == [denied.pk]
    assert cli.pk in listed(viewer_client, "?channel=cli") and plain.pk not in listed(viewer_client, "?channel=cli")
    assert listed(viewer_client, "?actor=carol") == [denied.pk]
    actors = viewer_client.get(reverse(CHANGELIST)).content.decode()
    assert "?actor=os%3Adeploy" in actors


def test_filters_by_date_range(viewer_client):
    old = event_at("2020-03-15 12:00:00+00")
    recent = event()

    in_2020 = listed(viewer_client, "?created_at__year=2020")
    ranged = listed(viewer_client, "?created_at__gte=2020-03-01T00:00%2B00:00&created_at__lt=2020-04-01T00:00%2B00:00")

    assert old in in_2020 and recent.pk not in in_2020
    assert ranged == [old]


def test_newest_first(viewer_client):
    first = event_at("2021-01-01 00:00:00+00")
    second = event_at("2022-01-01 00:00:00+00")
    third = event().pk

    ids = listed(viewer_client)

    assert ids.index(third) < ids.index(second) < ids.index(first)


def test_search_by_target_user_id_email_any_case_and_run_id(viewer_client, cli_actor):
    target = make_auth_user(email="Target.Person@Example.com", keep=("users",))
    other = make_auth_user(keep=())
    result = services.provision_users(actor=cli_actor, user_ids=[target])
    services.provision_users(actor=cli_actor, user_ids=[other])
    (event_id,) = result.audit_event_ids

    assert listed(viewer_client, f"?q={target}") == [event_id]
    assert listed(viewer_client, "?q=target.person%40EXAMPLE.com") == [event_id]
    assert listed(viewer_client, f"?q={result.run_id}") == [event_id]
    assert listed(viewer_client, f"?q={uuid.uuid4()}") == []


def test_nul_byte_in_search_is_refused_with_a_message(viewer_client):
    response = viewer_client.get(reverse(CHANGELIST), {"q": "someone\x00"})

    assert response.status_code == 200
    assert "Null characters are not allowed" in response.content.decode()


@pytest.mark.parametrize(
    "term",
    ["x" * 10_000, "%", "_", "%_%", "' OR 1=1 --", "\\", "'; DROP TABLE provisioning_auditevent; --"],
)
def test_odd_search_terms_narrow_the_list_without_failing(viewer_client, term):
    event(actor_username="someone")
    before = AuditEvent.objects.count()

    response = viewer_client.get(reverse(CHANGELIST), {"q": term})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert AuditEvent.objects.count() == before


def test_detail_shows_rows_created_with_links_and_users_not_provisioned(viewer_client, cli_actor):
    missing_profile = make_auth_user(keep=("users", "wallets"))
    phone_only = make_auth_user(phone="15557770001", keep=())
    result = services.provision_users(actor=cli_actor, user_ids=[missing_profile, phone_only])
    (event_id,) = result.audit_event_ids

    page = viewer_client.get(reverse("admin:provisioning_auditevent_change", args=[event_id]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "public.profiles" in html
    assert f'href="{reverse("admin:provisioning_authuser_change", args=[missing_profile])}"' in html
    assert f'href="{reverse("admin:provisioning_authuser_change", args=[phone_only])}"' in html
    (reason,) = {item.reason for item in result.not_provisioned if item.table == "users"}
    assert reason in html


def test_audit_log_is_read_only_in_the_admin_even_for_superusers(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="boss-password")
    client.force_login(boss)
    kept = event()
    change = reverse("admin:provisioning_auditevent_change", args=[kept.pk])

    page = client.get(change)
    post = client.post(change, {"actor_username": "rewritten"})
    delete = client.post(reverse("admin:provisioning_auditevent_delete", args=[kept.pk]), {"post": "yes"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert post.status_code == 403 and delete.status_code == 403
    kept.refresh_from_db()
    assert kept.actor_username == "alice"


# --- 2. export ---------------------------------------------------------------------------


def test_export_streams_the_filtered_list_and_is_audited(viewer_client, viewer):
    wanted = [event(action=Action.LOGIN, actor_username="bob") for _ in range(3)]
    event(action=Action.LOGOUT, actor_username="bob")

    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"action": "login", "actor": "bob"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert [int(r["id"]) for r in rows] == [e.pk for e in reversed(wanted)]
    assert {r["action"] for r in rows} == {"login"}
    export = AuditEvent.objects.filter(action=Action.EXPORT_AUDIT).get()
    assert (export.actor_id, export.actor_username, export.outcome) == (viewer.pk, "view", Outcome.SUCCEEDED)
    assert export.detail["filters"] == "action=login&actor=bob"


def test_list_and_export_name_the_person_of_a_single_user_event(viewer_client):
    phone_only = make_auth_user(None, phone="15550004444", keep=())
    with_email = make_auth_user("someone@example.com")
    one = event(target_user_ids=[phone_only])
    other = event(target_user_ids=[with_email])
    many = event(action=Action.PROVISION_SELECTED, target_user_ids=[phone_only, with_email])

    html = viewer_client.get(reverse(CHANGELIST)).content.decode()
    rows = {int(r["id"]): r for r in csv_rows(viewer_client.get(reverse("admin:provisioning_auditevent_export")))}

    change = reverse("admin:provisioning_auditevent_change", args=[one.pk])
    row = html.split(f'href="{change}"')[1].split("</tr>")[0]
    assert "phone 15550004444" in row
    assert f'href="{reverse("admin:provisioning_authuser_change", args=[phone_only])}"' in row
    assert "someone@example.com" in html
    assert rows[one.pk]["person"] == "phone 15550004444"
    assert rows[other.pk]["person"] == "someone@example.com"
    assert rows[many.pk]["person"] == ""  # several users: the ids column lists them


def test_export_link_on_the_changelist_keeps_filters_and_search(viewer_client):
    event(action=Action.LOGIN, actor_username="bob")
    page = viewer_client.get(reverse(CHANGELIST), {"action": "login", "q": "bob", "p": "0"})

    export_url = page.context["export_url"]

    assert export_url.startswith(reverse("admin:provisioning_auditevent_export") + "?")
    assert "action=login" in export_url and "q=bob" in export_url and "p=" not in export_url
    assert export_url.replace("&", "&amp;") in page.content.decode()
    assert len(csv_rows(viewer_client.get(export_url))) == 1


def test_export_neutralises_spreadsheet_formulas(viewer_client):
    event(actor_username='=HYPERLINK("http://evil")', action=Action.LOGIN_FAILED, outcome=Outcome.FAILED)

    (row,) = csv_rows(viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"action": "login_failed"}))

    assert row["actor_username"] == '\'=HYPERLINK("http://evil")'


#: Failed sign-in usernames built to reach a spreadsheet as a formula, whichever separator
#: the spreadsheet splits the file on.
HOSTILE_USERNAMES = [
    ";=1+1",
    ",=1+1",
    "a;+cmd|' /C calc'!A0",
    'x;"=1+1"',
    'x;""=1+1',
    "x; =1+1",
    "x;\t=1",
    "@SUM(A1:A2)",
    "-2+3",
    "x\n=1+1",
    "x\r\n-1+1",
    "x,;@a",
]
FORMULA_CHARACTERS = ("=", "+", "-", "@", "\t", "\r")


def is_plain_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize("quoting", [csv.QUOTE_MINIMAL, csv.QUOTE_NONE])
def test_export_reaches_no_spreadsheet_as_a_formula_with_either_separator(viewer_client, delimiter, quoting):
    for name in HOSTILE_USERNAMES:
        event(actor_username=name, action=Action.LOGIN_FAILED, outcome=Outcome.FAILED, detail={"typed": name})
    event(actor_username="plain", action=Action.LOGIN_FAILED, outcome=Outcome.FAILED, detail={"n": -5})

    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"action": "login_failed"})
    text = b"".join(response.streaming_content).decode()
    cells = [
        cell for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting) for cell in row
    ]

    assert len(cells) > len(HOSTILE_USERNAMES)
    formulas = [c for c in cells if c.startswith(FORMULA_CHARACTERS) and not is_plain_number(c)]
    assert formulas == []


def test_export_keeps_plain_values_and_numbers_as_they_are(viewer_client):
    event(actor_username="-5", action=Action.LOGIN_FAILED, outcome=Outcome.FAILED)
    event(actor_username="ann;bob", action=Action.LOGIN_FAILED, outcome=Outcome.FAILED)

    rows = csv_rows(viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"action": "login_failed"}))

    assert sorted(row["actor_username"] for row in rows) == ["-5", "ann;bob"]


def test_export_needs_the_audit_view_permission(client, django_user_model):
    staff = django_user_model.objects.create_user("plainstaff", password="x-password-1", is_staff=True)
    client.force_login(staff)

    response = client.get(reverse("admin:provisioning_auditevent_export"))

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=Action.EXPORT_AUDIT).exists()


def test_export_with_bad_filters_goes_back_to_the_list_and_writes_nothing(viewer_client):
    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), {"created_at__gte": "not-a-date"})

    # Back to the list at the same address, where the list names what it cannot use.
    assert response.status_code == 302 and response["Location"] == reverse(CHANGELIST) + "?created_at__gte=not-a-date"
    assert not AuditEvent.objects.filter(action=Action.EXPORT_AUDIT).exists()


@pytest.mark.parametrize(
    "query",
    [
        {"client_address": "notanip"},
        {"actor_username__regex": "("},
        {"target_user_ids__contains": "x"},
        {"rows_created__has_key": "\x00"},
        {"created_at__year": "99999"},
    ],
)
@pytest.mark.django_db(transaction=True)  # as in production: each request in autocommit
def test_export_answers_malformed_filters_as_the_list_does(viewer_client, query, caplog):
    event(actor_username="alice")
    listed_page = viewer_client.get(reverse(CHANGELIST), query)

    response = viewer_client.get(reverse("admin:provisioning_auditevent_export"), query)

    # The list shows the log without the filter and names it; the export goes back to it.
    assert listed_page.status_code == 200
    (key,) = query
    assert f"“{key}=" in listed_page.content.decode() and "it was ignored" in listed_page.content.decode()
    assert response.status_code == 302 and response["Location"] == reverse(CHANGELIST) + "?" + urlencode(query)
    assert not AuditEvent.objects.filter(action=Action.EXPORT_AUDIT).exists()
    assert [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []


# --- 3. append-only in the database ------------------------------------------------------


def test_update_of_an_audit_row_is_rejected_by_the_database():
    kept = event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE provisioning_auditevent SET actor_username = 'mallory' WHERE id = %s", [kept.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=kept.pk).update(outcome=Outcome.FAILED)
    kept.refresh_from_db()
    assert (kept.actor_username, kept.outcome) == ("alice", Outcome.SUCCEEDED)


def test_delete_of_an_audit_row_is_rejected_by_the_database():
    kept = event()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM provisioning_auditevent WHERE id = %s", [kept.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=kept.pk).delete()
    assert AuditEvent.objects.filter(pk=kept.pk).exists()


# --- 4. sign-ins -------------------------------------------------------------------------

LOGIN = "admin:login"


def test_sign_in_and_sign_out_are_audited(client, viewer):
    response = client.post(reverse(LOGIN), {"username": "view", "password": "view-password"})
    assert response.status_code == 302
    client.post(reverse("admin:logout"))

    login, logout = AuditEvent.objects.filter(action__in=[Action.LOGIN, Action.LOGOUT]).order_by("id")
    assert (login.action, login.actor_id, login.actor_username, login.outcome) == (
        Action.LOGIN,
        viewer.pk,
        "view",
        Outcome.SUCCEEDED,
    )
    assert login.client_address == "127.0.0.1"
    assert (logout.action, logout.actor_id) == (Action.LOGOUT, viewer.pk)


def test_failed_sign_in_is_audited_without_the_password(client, viewer):
    response = client.post(reverse(LOGIN), {"username": "view", "password": "Wrong-Guess-4711"})
    assert response.status_code == 200

    failed = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert (failed.actor_username, failed.outcome, failed.actor_id) == ("view", Outcome.FAILED, None)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM provisioning_auditevent AS e WHERE row_to_json(e)::text LIKE '%%Wrong-Guess%%'"
        )
        assert cursor.fetchone()[0] == 0


@pytest.mark.parametrize("username", ["ad\x00min", "x" * 10_000, ""])
def test_malformed_sign_in_is_refused_by_the_form_not_a_500(client, username):
    response = client.post(reverse(LOGIN), {"username": username, "password": "whatever"})

    assert response.status_code == 200
    assert 'class="errornote"' in response.content.decode() or "errorlist" in response.content.decode()


def test_failed_sign_in_stores_the_typed_username_without_control_characters(client):
    response = client.post(reverse(LOGIN), {"username": "ad\x07m\x1bin", "password": "whatever"})

    assert response.status_code == 200
    assert AuditEvent.objects.get(action=Action.LOGIN_FAILED).actor_username == "admin"


def test_service_denial_by_a_viewer_is_audited(viewer):
    user_id = make_auth_user(keep=())
    actor = Actor(username="view", channel=AuditEvent.Channel.WEB, user=viewer)

    with pytest.raises(services.ProvisioningDenied):
        services.provision_users(actor=actor, user_ids=[user_id])

    assert AuditEvent.objects.filter(actor=viewer, outcome=Outcome.DENIED).count() == 1


def test_failed_sign_in_with_odd_extra_fields_is_not_a_500(client):
    response = client.post(reverse(LOGIN), {"username": "nobody", "password": "bad", "next": "/\x00", "x": "%_'"})

    assert response.status_code == 200
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED).count() == 1


def test_a_dry_run_never_shows_rows_as_created(viewer_client, cli_actor):
    user_id = make_auth_user(keep=())
    services.provision_users(actor=cli_actor, user_ids=[user_id], dry_run=True)
    dry = AuditEvent.objects.get(outcome=Outcome.DRY_RUN)

    listing = viewer_client.get(reverse(CHANGELIST)).content.decode()
    detail = viewer_client.get(reverse("admin:provisioning_auditevent_change", args=[dry.pk])).content.decode()

    assert "would create 3" in listing
    # The counts the dry run made (detail.would_create), for the users it covered.
    assert "A dry run: nothing was written.</strong> It would create 3 rows for 1 user:" in detail


def test_audit_search_takes_part_of_an_email(viewer_client, cli_actor):
    user_id = make_auth_user("Part.Of.Email@Example.com", keep=())
    services.provision_users(actor=cli_actor, user_ids=[user_id])
    event = AuditEvent.objects.latest("id")

    assert event.pk in listed(viewer_client, "?q=part.of.email")
    assert event.pk not in listed(viewer_client, "?q=nobody-like-this")


def test_an_event_names_people_by_email_or_phone_and_collapses_a_long_list(viewer_client, cli_actor):
    people = [make_auth_user(f"person-{i}@example.com", keep=()) for i in range(12)]
    phone_only = make_auth_user(None, phone="15550004444", keep=())
    services.provision_users(actor=cli_actor, user_ids=[*people, phone_only])
    event = AuditEvent.objects.latest("id")

    html = viewer_client.get(reverse("admin:provisioning_auditevent_change", args=[event.pk])).content.decode()

    assert "person-0@example.com</a>" in html and "phone 15550004444</a>" in html
    assert f'href="{reverse("admin:provisioning_authuser_change", args=[people[0]])}"' in html
    assert "<summary>13 users</summary>" in html  # a long list is collapsed behind its count
    assert f"<code>{people[0]}</code>" not in html  # no bare id where a person's name belongs


# --- staff accounts and their rights (issue 23, item 8) ----------------------------------


def _account_form(account, **changes) -> dict:
    """What the admin's user change form posts for `account`, with `changes`."""
    data = {
        "username": account.username,
        "email": account.email,
        "first_name": "",
        "last_name": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [str(g.pk) for g in account.groups.all()],
        "user_permissions": [str(p.pk) for p in account.user_permissions.all()],
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "last_login_0": "",
        "last_login_1": "",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", password="boss-password-123")


@pytest.fixture
def boss_client(client, boss):
    client.force_login(boss)
    return client


def test_a_group_membership_change_in_the_admin_is_an_audit_event(boss_client, boss, viewer, support_groups):
    from django.contrib.auth.models import Group

    provisioners = Group.objects.get(name="Support provisioners")
    url = reverse("admin:auth_user_change", args=[viewer.pk])

    response = boss_client.post(url, _account_form(viewer, groups=[str(provisioners.pk)]), REMOTE_ADDR="192.0.2.50")

    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=Action.STAFF_ACCOUNT_CHANGED)
    assert (event.actor_id, event.actor_username, event.channel, event.client_address) == (
        boss.pk,
        "boss",
        "web",
        "192.0.2.50",
    )
    assert event.detail == {
        "account": "view",
        "account_id": viewer.pk,
        "changes": {"groups": {"added": ["Support provisioners"], "removed": ["Support viewers"]}},
    }


def test_granting_remove_orphans_to_a_group_is_an_audit_event(boss_client, support_groups):
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.get(name="Support provisioners")
    orphans = Permission.objects.get(codename="remove_orphans")
    permissions = [str(p.pk) for p in group.permissions.all()] + [str(orphans.pk)]

    response = boss_client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": group.name, "permissions": permissions}
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.STAFF_GROUP_CHANGED)
    assert event.actor_username == "boss"
    assert event.detail == {
        "group": "Support provisioners",
        "group_id": group.pk,
        "changes": {"permissions": {"added": ["provisioning.remove_orphans"], "removed": []}},
    }


def test_a_saved_form_that_changes_nothing_records_nothing(boss_client, viewer):
    boss_client.post(reverse("admin:auth_user_change", args=[viewer.pk]), _account_form(viewer))

    assert not AuditEvent.objects.filter(action=Action.STAFF_ACCOUNT_CHANGED).exists()


def test_adding_a_staff_account_and_setting_its_password_are_audit_events_without_the_password(boss_client, boss):
    from django.contrib.auth import get_user_model

    added = boss_client.post(
        reverse("admin:auth_user_add"),
        {
            "username": "newcomer",
            "usable_password": "true",
            "password1": "Pw-newcomer-1234",
            "password2": "Pw-newcomer-1234",
        },
    )
    assert added.status_code == 302
    account = get_user_model().objects.get(username="newcomer")
    changed = boss_client.post(
        reverse("admin:auth_user_password_change", args=[account.pk]),
        {"password1": "Pw-another-98765", "password2": "Pw-another-98765"},
    )
    assert changed.status_code == 302

    event = AuditEvent.objects.get(action=Action.STAFF_ACCOUNT_ADDED)
    assert event.actor_username == "boss" and event.detail["account"] == "newcomer"
    assert event.detail["state"]["is_superuser"] is False and event.detail["state"]["groups"] == []
    password = AuditEvent.objects.get(action=Action.STAFF_PASSWORD_CHANGED)
    assert password.detail == {"account": "newcomer", "account_id": account.pk, "password": "set"}
    stored = str(list(AuditEvent.objects.values_list("detail", flat=True)))
    assert "Pw-" not in stored and account.password not in stored


@pytest.mark.parametrize("how", ["delete page", "bulk delete action"])
def test_a_deleted_staff_account_is_an_audit_event_and_its_events_keep_its_name(boss_client, viewer, how):
    from django.contrib.auth import get_user_model

    earlier = services.provision_users  # a refusal the viewer leaves behind
    user_id = make_auth_user(keep=())
    with pytest.raises(services.ProvisioningDenied):
        earlier(actor=Actor(username=viewer.username, channel="web", user=viewer), user_ids=[user_id])
    refused = AuditEvent.objects.get(outcome=Outcome.DENIED)

    if how == "delete page":
        response = boss_client.post(reverse("admin:auth_user_delete", args=[viewer.pk]), {"post": "yes"})
    else:
        response = boss_client.post(
            reverse("admin:auth_user_changelist"),
            {"action": "delete_selected", "_selected_action": [str(viewer.pk)], "post": "yes"},
        )

    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=viewer.pk).exists()
    deleted = AuditEvent.objects.get(action=Action.STAFF_ACCOUNT_DELETED)
    assert deleted.actor_username == "boss"
    assert deleted.detail["account"] == "view" and deleted.detail["account_id"] == viewer.pk
    assert deleted.detail["state"]["groups"] == ["Support viewers"]
    refused = AuditEvent.objects.get(pk=refused.pk)
    assert refused.actor_username == "view" and refused.actor_id == viewer.pk
    page = boss_client.get(reverse("admin:provisioning_auditevent_change", args=[refused.pk])).content.decode()
    assert "view" in page and f"deleted (was account id {viewer.pk}" in page


def test_deleting_a_group_is_an_audit_event(boss_client, support_groups):
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="Support viewers")

    response = boss_client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"})

    assert response.status_code == 302
    event = AuditEvent.objects.get(action=Action.STAFF_GROUP_DELETED)
    assert (
        event.detail["group"] == "Support viewers"
        and "provisioning.view_authuser" in event.detail["state"]["permissions"]
    )
