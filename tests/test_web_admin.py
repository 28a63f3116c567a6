"""The status list, detail page and provisioning pages, through Django's test client."""

from __future__ import annotations

import html
import uuid

import pytest
from django.urls import reverse

from provisioning import jobs
from provisioning.engine import selectors
from provisioning.models import AuditEvent, ProvisioningJob
from tests.factories import count, execute, make_auth_user, make_many_auth_users

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:provisioning_authuser_changelist"


def listed_ids(client, **params) -> set[uuid.UUID]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


@pytest.fixture
def population():
    """One user per provisioning state, plus the kinds hidden by default."""
    return {
        "complete": make_auth_user(),
        "no_app_user": make_auth_user(keep=("profiles", "wallets")),
        "no_profile": make_auth_user(keep=("users", "wallets")),
        "no_wallet": make_auth_user(keep=("users", "profiles")),
        "nothing": make_auth_user(keep=()),
        "deleted": make_auth_user(deleted=True, keep=()),
        "anonymous": make_auth_user(anonymous=True, keep=("profiles", "wallets")),
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("", {"complete", "no_app_user", "no_profile", "no_wallet", "nothing"}),
        ("missing_any", {"no_app_user", "no_profile", "no_wallet", "nothing"}),
        ("missing_users", {"no_app_user", "nothing"}),
        ("missing_profiles", {"no_profile", "nothing"}),
        ("missing_wallets", {"no_wallet", "nothing"}),
        ("complete", {"complete"}),
    ],
)
@pytest.mark.parametrize("key_indexes", [True, False], ids=["key-indexes", "no-key-index"])
def test_each_filter_lists_exactly_the_right_users(viewer_client, population, status, expected, key_indexes):
    if not key_indexes:
        # The Eloity app's own shape: no index on profiles.user_id or wallets.user_id, where
        # "missing anything" and "fully provisioned" read each table once instead of probing.
        execute(
            "DROP INDEX public.profiles_user_id_key; ALTER TABLE public.wallets DROP CONSTRAINT wallets_user_id_key"
        )
        assert not selectors.keys_indexed()
    params = {"status": status} if status else {}
    assert listed_ids(viewer_client, **params) == {population[name] for name in expected}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("deleted", {"deleted"}),
        ("anonymous", {"anonymous"}),
        ("everyone", {"complete", "no_app_user", "no_profile", "no_wallet", "nothing", "deleted", "anonymous"}),
    ],
)
def test_deleted_and_anonymous_users_appear_only_when_asked_for(viewer_client, population, kind, expected):
    assert listed_ids(viewer_client, kind=kind) == {population[name] for name in expected}


@pytest.mark.parametrize("key_indexes", [True, False], ids=["key-indexes", "no-key-index"])
def test_list_shows_status_per_table(viewer_client, population, key_indexes):
    if not key_indexes:
        execute(
            "DROP INDEX public.profiles_user_id_key; ALTER TABLE public.wallets DROP CONSTRAINT wallets_user_id_key"
        )
    response = viewer_client.get(reverse(CHANGELIST), {"status": "missing_profiles"})
    rows = {obj.pk: obj for obj in response.context["cl"].result_list}
    nothing = rows[population["nothing"]]
    assert (nothing.has_app_user, nothing.has_profile, nothing.has_wallet) == (False, False, False)
    no_profile = rows[population["no_profile"]]
    assert (no_profile.has_app_user, no_profile.has_profile, no_profile.has_wallet) == (True, False, True)


def test_search_by_email_is_case_insensitive_and_by_exact_id(viewer_client):
    target = make_auth_user(email="Someone.Special@Example.COM")
    make_auth_user(email="other@example.com")

    assert listed_ids(viewer_client, q="someone.special@example") == {target}
    assert listed_ids(viewer_client, q=str(target)) == {target}
    assert listed_ids(viewer_client, q=str(uuid.uuid4())) == set()


def test_list_runs_a_fixed_number_of_queries_whatever_the_page_size(viewer_client, django_assert_max_num_queries):
    for _ in range(30):
        make_auth_user(keep=())
    # Sessions, user, permissions, count, page, estimate: no query per row.
    with django_assert_max_num_queries(12):
        viewer_client.get(reverse(CHANGELIST), {"status": "missing_any"})


def test_detail_page_shows_the_rows_and_history_but_no_secret(provisioner_client):
    user_id = make_auth_user(keep=("users",), secrets="MARKER-SECRET-42")

    response = provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[user_id]))

    assert response.status_code == 200
    html = response.content.decode()
    assert "MARKER-SECRET-42" not in html
    assert html.count("<strong>missing</strong>") == 2
    assert 'id="provision-form"' in html


def test_provision_button_creates_exactly_the_missing_rows(provisioner_client, provisioner):
    user_id = make_auth_user(keep=("users",))

    response = provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[user_id]), follow=True)

    assert response.status_code == 200
    assert [count(t, [user_id]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    text = " ".join(str(m) for m in response.context["messages"])
    assert "Created" in text
    event = AuditEvent.objects.latest("id")
    assert (event.actor_id, event.outcome) == (provisioner.pk, AuditEvent.Outcome.SUCCEEDED)
    assert event.client_address == "127.0.0.1"
    assert "No action has been taken" not in response.content.decode()


def test_provision_button_rejects_get(provisioner_client):
    user_id = make_auth_user(keep=())
    response = provisioner_client.get(reverse("admin:provisioning_authuser_provision", args=[user_id]))
    assert response.status_code == 405
    assert count("profiles", [user_id]) == 0


def test_viewer_gets_403_nothing_written_and_a_denied_event(viewer_client, viewer):
    user_id = make_auth_user(keep=())

    one = viewer_client.post(reverse("admin:provisioning_authuser_provision", args=[user_id]))
    everyone = viewer_client.post(reverse("admin:provisioning_authuser_provision_all"))

    assert (one.status_code, everyone.status_code) == (403, 403)
    assert count("profiles", [user_id]) == 0
    denied = AuditEvent.objects.filter(outcome=AuditEvent.Outcome.DENIED, actor=viewer)
    assert denied.count() == 2


def test_viewer_sees_no_provisioning_button_or_action(viewer_client):
    user_id = make_auth_user(keep=())
    detail = viewer_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])).content.decode()
    listing = viewer_client.get(reverse(CHANGELIST)).content.decode()
    assert 'id="provision-form"' not in detail
    assert "provision_selected" not in listing
    assert "Provision all missing" not in listing


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g"])
def test_malformed_id_is_a_404(provisioner_client, bad_id):
    assert provisioner_client.get(f"/admin/provisioning/authuser/{bad_id}/change/").status_code == 404
    assert provisioner_client.post(f"/admin/provisioning/authuser/{bad_id}/provision/").status_code == 404


def test_unknown_user_is_a_404(provisioner_client):
    ghost = uuid.uuid4()
    assert provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[ghost])).status_code == 404
    assert provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[ghost])).status_code == 404


def test_auth_users_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client):
    user_id = make_auth_user()
    assert admin_client.get("/admin/provisioning/authuser/add/").status_code == 403
    assert admin_client.post(f"/admin/provisioning/authuser/{user_id}/delete/").status_code == 403
    response = admin_client.post(
        reverse("admin:provisioning_authuser_change", args=[user_id]), {"email": "hacked@example.com"}
    )
    assert response.status_code == 403


def test_bulk_action_shows_a_dry_run_then_provisions_on_confirmation(provisioner_client):
    ids = [make_auth_user(keep=()), make_auth_user(keep=("users", "profiles")), make_auth_user()]
    data = {"action": "provision_selected", "_selected_action": [str(i) for i in ids]}

    confirm = provisioner_client.post(reverse(CHANGELIST), data)

    assert confirm.status_code == 200
    assert [t["count"] for t in confirm.context["tables"]] == [1, 1, 2]
    assert count("wallets", ids) == 1  # nothing written yet
    assert AuditEvent.objects.latest("id").outcome == AuditEvent.Outcome.DRY_RUN

    done = provisioner_client.post(reverse(CHANGELIST), {**data, "post": "yes"}, follow=True)

    assert done.status_code == 200
    assert [count(t, ids) for t in ("users", "profiles", "wallets")] == [3, 3, 3]
    event = AuditEvent.objects.latest("id")
    assert event.action == AuditEvent.Action.PROVISION_SELECTED
    assert sorted(event.target_user_ids) == sorted(ids)


def test_provision_all_previews_then_writes(provisioner_client):
    ids = [make_auth_user(keep=()) for _ in range(3)] + [make_auth_user(phone="15551234", keep=())]

    preview = provisioner_client.get(reverse("admin:provisioning_authuser_provision_all"))

    assert preview.status_code == 200
    html = preview.content.decode()
    assert "auth user has no email" in html
    assert count("profiles", ids) == 0

    response = provisioner_client.post(reverse("admin:provisioning_authuser_provision_all"))

    # The run is a background job: the page follows it; the worker's part runs here.
    job = ProvisioningJob.objects.latest("id")
    assert response.status_code == 302
    assert response["Location"] == reverse("provisioning_job", args=[job.pk])
    assert count("profiles", ids) == 0
    jobs.run_job(job.pk)
    assert count("profiles", ids) == 4
    assert count("users", ids) == 3


def test_a_long_list_says_more_than_instead_of_a_wrong_count(viewer_client):
    make_many_auth_users(1_100)

    response = viewer_client.get(reverse(CHANGELIST))

    html = response.content.decode()
    cap = response.context["cl"].paginator.count_cap
    assert cap < 1_100
    assert f"more than {cap} auth users" in html
    assert f"{cap + 1} auth users" not in html


def test_bulk_confirmation_carries_over_a_thousand_users(provisioner_client):
    ids = make_many_auth_users(1_100)
    execute("DELETE FROM public.wallets WHERE user_id = ANY(%s)", [ids])
    data = {"action": "provision_selected", "_selected_action": [str(i) for i in ids], "post": "yes"}

    response = provisioner_client.post(reverse(CHANGELIST), data)

    assert response.status_code == 302
    assert count("wallets", ids) == 1_100


def test_a_duplicate_profile_row_does_not_break_its_page(viewer_client):
    user_id = make_auth_user()
    execute("DROP INDEX public.profiles_user_id_key")
    execute("INSERT INTO public.profiles (user_id) VALUES (%s)", [user_id])

    response = viewer_client.get(reverse("admin:provisioning_profile_change", args=[user_id]))

    assert response.status_code == 200


def test_list_times_carry_their_utc_value_on_hover(viewer_client):
    make_auth_user(created_at="2026-08-12 11:24:00+00")

    html = viewer_client.get(reverse(CHANGELIST)).content.decode()

    assert '<time datetime="2026-08-12T11:24:00Z" title="2026-08-12 11:24:00 UTC">' in html


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_messages_name_the_person_and_the_rows_and_leave_out_empty_tables(provisioner_client):
    user_id = make_auth_user("Eloity.Person@example.com", keep=("users",))

    one = provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[user_id]), follow=True)

    assert _messages(one) == [("success", "Created a profile and a wallet for Eloity.Person@example.com.")]

    ids = [make_auth_user(keep=()), make_auth_user(keep=("users", "profiles")), make_auth_user(keep=("users",))]
    data = {"action": "provision_selected", "_selected_action": [str(i) for i in ids], "post": "yes"}
    bulk = provisioner_client.post(reverse(CHANGELIST), data, follow=True)

    assert _messages(bulk) == [("success", "Created an app user, 2 profiles and 3 wallets for 3 users.")]


def test_a_run_that_writes_nothing_is_never_shown_as_a_success(provisioner_client):
    user_id = make_auth_user()
    phone_only = make_auth_user(None, phone="15550001111", keep=())

    done = provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[user_id]), follow=True)
    assert _messages(done)[0][0] == "info" and "Nothing to do" in _messages(done)[0][1]

    refused = provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[phone_only]), follow=True)
    levels = [level for level, _ in _messages(refused)]
    assert "success" not in levels and "warning" in levels


def test_a_phone_only_user_not_provisioned_is_named_by_the_phone(provisioner_client):
    phone_only = make_auth_user(None, phone="15550002222", keep=())
    data = {"action": "provision_selected", "_selected_action": [str(phone_only)], "post": "yes"}

    bulk = provisioner_client.post(reverse(CHANGELIST), data, follow=True)

    (refusal,) = [text for _, text in _messages(bulk) if text.startswith("Not provisioned:")]
    assert refusal.startswith(f"Not provisioned: phone 15550002222 ({str(phone_only)[:8]}), public.users: ")
    assert str(phone_only) not in refusal


def test_a_phone_only_user_gets_a_next_step_and_an_administrator_the_sql(provisioner_client, admin_client):
    phone_only = make_auth_user(None, phone="15550005555", keep=("profiles", "wallets"))
    url = reverse("admin:provisioning_authuser_change", args=[phone_only])

    support = html.unescape(provisioner_client.get(url).content.decode())
    admin = html.unescape(admin_client.get(url).content.decode())

    sql = "ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;"
    for page in (support, admin):
        step = page.split('id="next-steps"')[1].split("</div>")[0]
        assert "Ask them for an email address" in step and "then provision again" in step
    assert sql not in support and "an administrator can let the column be empty" in support
    assert sql in admin


def test_the_preview_counts_rows_it_cannot_write_as_rows(provisioner_client):
    from tests.factories import make_chained_shape

    make_auth_user(keep=())
    make_auth_user(keep=())
    make_chained_shape()

    page = provisioner_client.get(reverse("admin:provisioning_authuser_provision_all")).content.decode()

    assert "Cannot be provisioned (6 missing rows)" in page


def test_times_follow_the_staff_members_own_time_zone_with_utc_on_hover(viewer_client):
    user_id = make_auth_user(created_at="2026-03-01 20:00+00")
    url = reverse("admin:provisioning_authuser_change", args=[user_id])

    site = viewer_client.get(url).content.decode()
    viewer_client.cookies["eloity_tz"] = "Pacific/Auckland"
    auckland = viewer_client.get(url).content.decode()
    viewer_client.cookies["eloity_tz"] = "../../etc/passwd"
    bogus = viewer_client.get(url)

    assert "1 Mar 2026, 20:00 <abbr" in site and 'title="2026-03-01 20:00:00 UTC"' in site
    assert "2 Mar 2026, 09:00 <abbr" in auckland and 'title="2026-03-01 20:00:00 UTC"' in auckland
    assert bogus.status_code == 200 and "1 Mar 2026, 20:00 <abbr" in bogus.content.decode()
    assert "a.m." not in site and "p.m." not in site


def test_no_take_me_back_returns_to_the_list_as_it_was_filtered(provisioner_client):
    ids = [make_auth_user(keep=())]
    data = {"action": "provision_selected", "_selected_action": [str(i) for i in ids]}

    confirm = provisioner_client.post(reverse(CHANGELIST) + "?status=missing_profiles&q=example", data)

    back = reverse(CHANGELIST) + "?status=missing_profiles&amp;q=example"
    assert f'href="{back}" class="button cancel-link"' in confirm.content.decode()


def test_an_unknown_filter_value_is_said_not_silently_ignored(viewer_client):
    response = viewer_client.get(reverse(CHANGELIST), {"status": "bogus", "kind": "nobody"})

    assert response.status_code == 200
    texts = [str(m) for m in response.context["messages"]]
    assert any("“bogus” is not a choice of the “provisioning” filter" in t for t in texts)
    assert any("“nobody” is not a choice of the “sign-ups shown” filter" in t for t in texts)


@pytest.mark.parametrize("model", ["appuser", "profile", "wallet"])
def test_app_table_lists_link_to_the_auth_user_and_find_a_user_by_id(viewer_client, model):
    user_id = make_auth_user()
    other = make_auth_user()
    url = reverse(f"admin:provisioning_{model}_changelist")

    found = viewer_client.get(url, {"q": str(user_id)})
    html = found.content.decode()

    assert found.status_code == 200
    assert [str(getattr(o, "user_id", None) or o.pk) for o in found.context["cl"].result_list] == [str(user_id)]
    assert f'href="{reverse("admin:provisioning_authuser_change", args=[user_id])}"' in html
    assert str(other) not in html


def test_search_finds_a_user_by_phone_as_shown_and_by_the_short_id(viewer_client):
    phone_user = make_auth_user(None, phone="15550001234", keep=())
    user_id = make_auth_user("short-id@example.com")

    def found(term):
        return [u.pk for u in viewer_client.get(reverse(CHANGELIST), {"q": term}).context["cl"].result_list]

    assert found("+1 555-000-1234") == [phone_user]
    assert found("15550001234") == [phone_user]
    assert user_id in found(str(user_id)[:8]) and phone_user not in found(str(user_id)[:8])
    assert found(str(user_id)[:8].upper()) == found(str(user_id)[:8])


def test_a_user_that_cannot_be_provisioned_gets_a_badge_and_the_reason_not_a_button(provisioner_client):
    deleted = make_auth_user(keep=(), deleted=True)
    phone_only = make_auth_user(None, phone="15550002222", keep=())

    gone = provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[deleted])).content.decode()
    part = provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[phone_only])).content.decode()

    assert "Cannot be provisioned" in gone and "auth user is soft-deleted" in gone
    assert 'id="provision-button"' not in gone
    assert "Cannot be provisioned</strong> (in part)" in part and "public.users.email is NOT NULL" in part
    assert 'id="provision-button"' in part and "Creates only the 2 missing rows that can be written" in part


def test_the_cannot_be_provisioned_filter_lists_exactly_those_users(viewer_client):
    phone_only = make_auth_user(None, phone="15550003333", keep=())
    make_auth_user(keep=())  # missing everything, but all of it can be written
    make_auth_user()  # complete

    response = viewer_client.get(reverse(CHANGELIST), {"status": "cannot"})

    assert [u.pk for u in response.context["cl"].result_list] == [phone_only]


@pytest.fixture
def keyset_list(monkeypatch):
    """Page the auth-user list as on a large project (keyset, by id), whatever its size."""
    from provisioning.web.admin import auth_users

    monkeypatch.setattr(auth_users, "LARGE_TABLE", -1)
    monkeypatch.setattr(auth_users, "MIN_COUNT_CAP", 7)
    monkeypatch.setattr(auth_users.AuthUserAdmin, "list_per_page", 4)


def _walk(client, params) -> tuple[list[uuid.UUID], list]:
    """Every page of the list as a person reads it, following "Next" links: (ids in order,
    the change lists)."""
    seen, lists = [], []
    response = client.get(reverse(CHANGELIST), params)
    while True:
        assert response.status_code == 200
        cl = response.context["cl"]
        lists.append(cl)
        seen += [obj.pk for obj in cl.result_list]
        if not cl.next_page_url:
            return seen, lists
        response = client.get(reverse(CHANGELIST) + cl.next_page_url)


@pytest.mark.usefixtures("keyset_list")
@pytest.mark.parametrize("key_indexes", [True, False], ids=["key-indexes", "no-key-index"])
@pytest.mark.parametrize("status", ["", "missing_any", "missing_profiles", "complete"])
def test_keyset_pages_list_every_matching_user_once_in_id_order(viewer_client, status, key_indexes):
    users = {make_auth_user(keep=("users", "wallets")) for _ in range(7)}  # missing a profile
    users |= {make_auth_user() for _ in range(6)}  # complete
    users |= {make_auth_user(keep=()) for _ in range(5)}  # missing everything
    if not key_indexes:
        execute(
            "DROP INDEX public.profiles_user_id_key; ALTER TABLE public.wallets DROP CONSTRAINT wallets_user_id_key"
        )
    expected = {
        "": users,
        "missing_any": {u for u in users if count("profiles", [u]) == 0},
        "missing_profiles": {u for u in users if count("profiles", [u]) == 0},
        "complete": {u for u in users if count("profiles", [u]) == 1},
    }[status]

    seen, lists = _walk(viewer_client, {"status": status} if status else {})

    assert seen == sorted(expected)  # each once, in id order, none left out
    assert all(cl.keyset for cl in lists)
    per_page = lists[0].list_per_page
    assert len(lists) == max(1, -(-len(expected) // per_page))
    # The rows shown are numbered as in one long list, and the count stops at the cap.
    for n, cl in enumerate(lists):
        assert (cl.first_shown, cl.last_shown) == (n * per_page + 1, n * per_page + len(cl.result_list))
        # Counted up to 7 users past the cursor (the cap here): "more than" beyond that.
        assert cl.result_count == n * per_page + min(len(expected) - n * per_page, 8)


@pytest.mark.usefixtures("keyset_list")
def test_the_drifted_list_pages_every_drifted_user_once_in_id_order(viewer_client):
    drifted = set()
    for i in range(12):
        user_id = make_auth_user(f"walk-{i}@example.com")
        if i % 3:  # two in three change their address in auth
            execute("UPDATE auth.users SET email = %s WHERE id = %s", [f"walk-{i}-new@example.com", user_id])
            drifted.add(user_id)

    seen, lists = _walk(viewer_client, {"status": "drifted"})

    assert seen == sorted(drifted)
    per_page = lists[0].list_per_page
    for n, cl in enumerate(lists):
        # Counted up to 7 users past the cursor (the cap here): "more than" beyond that.
        assert cl.result_count == n * per_page + min(len(drifted) - n * per_page, 8)
    first = " ".join(viewer_client.get(reverse(CHANGELIST), {"status": "drifted"}).content.decode().split())
    assert "4 of more than 7 auth users" in first


@pytest.mark.usefixtures("keyset_list")
def test_keyset_page_links_keep_the_filters_and_a_filter_starts_the_list_over(viewer_client, monkeypatch):
    from provisioning.web.admin import auth_users

    monkeypatch.setattr(auth_users.AuthUserAdmin, "list_per_page", 2)
    users = sorted(make_auth_user(keep=()) for _ in range(5))

    first = viewer_client.get(reverse(CHANGELIST), {"status": "missing_profiles"})
    html = first.content.decode()
    cl = first.context["cl"]
    assert f"after={users[1]}" in cl.next_page_url and "status=missing_profiles" in cl.next_page_url
    assert "1\u20132 of 5" in " ".join(html.split())

    second = viewer_client.get(reverse(CHANGELIST) + cl.next_page_url)
    cl2 = second.context["cl"]
    assert [u.pk for u in cl2.result_list] == users[2:4]
    text = " ".join(second.content.decode().split())
    assert "3\u20134 of 5" in text and "« First page" in text
    # Links that change the filter or the search drop the cursor: a new list starts at its top.
    assert "after=" not in cl2.get_query_string({"status": "missing_any"})
    assert "after=" not in cl2.clear_all_filters_qs
    # "Select all" would mean "all after here" on a later page: it is not offered there.
    assert "Select all" not in second.content.decode()
    # Far down a large list the numbers are grouped by thousands.
    deep = viewer_client.get(reverse(CHANGELIST), {"status": "missing_profiles", "after": str(users[1]), "p": 600})
    assert "1,199\u20131,200 of" in " ".join(deep.content.decode().split())


@pytest.mark.usefixtures("keyset_list")
def test_a_bad_keyset_cursor_is_the_first_page_with_a_message(viewer_client):
    user = make_auth_user(keep=())

    response = viewer_client.get(reverse(CHANGELIST), {"after": "not-a-uuid", "p": "7"})

    assert response.status_code == 200
    assert [u.pk for u in response.context["cl"].result_list] == [user]
    assert response.context["cl"].first_shown == 1
    assert "“after=not-a-uuid” in the address is not a page marker of this list" in response.content.decode()
