"""Beyond missing rows (issue 16): values that differ from the auth user, the audited sync,
and orphaned rows, on the demo schema and on the Eloity migration's shape, asserted on rows
in PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from provisioning.actors import Actor
from provisioning.drift import selectors, services
from provisioning.engine.services import ProvisioningDenied
from provisioning.models import AuditEvent
from tests.factories import count, execute, make_auth_user, make_eloity_migration_shape, rows, run_command

pytestmark = pytest.mark.django_db


def change_email(user_id: uuid.UUID, email: str | None) -> None:
    """What Supabase Auth does when a user changes their address: auth.users only."""
    execute("UPDATE auth.users SET email = %s WHERE id = %s", [email, user_id])


def app_email(user_id: uuid.UUID) -> str | None:
    (row,) = rows("users", user_id)
    return row["email"]


def drifted() -> dict[str, int]:
    per_column, _ = selectors.drift_counts()
    return {f"{c.table}.{c.column}": c.rows for c in per_column}


def test_drift_is_found_exactly_null_aware_and_case_sensitive():
    make_auth_user("same@example.com")
    moved = make_auth_user("old@example.com")
    cased = make_auth_user("ada@example.com")
    gone = make_auth_user("phone-later@example.com")
    soft_deleted = make_auth_user("deleted@example.com")
    change_email(moved, "new@example.com")
    change_email(cased, "Ada@Example.com")  # stored as typed: a different value
    change_email(gone, None)  # the auth user has no email any more
    change_email(soft_deleted, "elsewhere@example.com")
    execute("UPDATE auth.users SET deleted_at = now() WHERE id = %s", [soft_deleted])

    assert drifted() == {"public.users.email": 3}
    assert set(AuthUserIds.drifted()) == {moved, cased, gone}
    side_by_side = selectors.user_drift(moved)
    assert side_by_side == [
        {
            "table": "public.users",
            "column": "email",
            "copied_from": "auth.users.email",
            "app": "old@example.com",
            "auth": "new@example.com",
            "differs": True,
        }
    ]


def test_the_list_filter_finds_the_same_users_by_probe_and_by_one_join(monkeypatch):
    from provisioning.engine import catalog

    moved = make_auth_user("probe-old@example.com")
    change_email(moved, "probe-new@example.com")
    make_auth_user("steady-probe@example.com")

    by_probe = set(AuthUserIds.drifted())
    monkeypatch.setattr(catalog, "key_indexed", lambda keys: False)  # as on a key without an index
    assert by_probe == set(AuthUserIds.drifted()) == {moved}


class AuthUserIds:
    @staticmethod
    def drifted() -> list[uuid.UUID]:
        from provisioning.engine import selectors as engine_selectors

        return list(engine_selectors.population().filter(selectors.drifted_q()).values_list("pk", flat=True))


def test_dry_run_equals_the_real_run_and_the_audit_event_keeps_old_and_new(cli_actor):
    moved = [make_auth_user(f"before{i}@example.com") for i in range(3)]
    for i, user_id in enumerate(moved):
        change_email(user_id, f"after{i}@example.com")
    untouched = make_auth_user("stays@example.com")

    preview = services.sync_values(actor=cli_actor, all_drifted=True, dry_run=True)

    assert [app_email(u) for u in moved] == [f"before{i}@example.com" for i in range(3)]  # nothing written
    real = services.sync_values(actor=cli_actor, all_drifted=True)

    assert [app_email(u) for u in moved] == [f"after{i}@example.com" for i in range(3)]
    assert app_email(untouched) == "stays@example.com"
    assert {c.as_dict()["user_id"]: (c.old, c.new) for c in preview.changes} == {
        c.as_dict()["user_id"]: (c.old, c.new) for c in real.changes
    }
    assert real.changed == preview.changed == {"users.email": 3} and real.ok
    event = AuditEvent.objects.get(pk=real.audit_event_ids[0])
    assert (event.action, event.outcome) == (AuditEvent.Action.SYNC_VALUES, AuditEvent.Outcome.SUCCEEDED)
    assert {(old, new) for _, old, new in event.detail["changes"]["public.users.email"]} == {
        (f"before{i}@example.com", f"after{i}@example.com") for i in range(3)
    }
    assert set(event.target_user_ids) == set(moved)
    dry = AuditEvent.objects.get(pk=preview.audit_event_ids[0])
    assert dry.outcome == AuditEvent.Outcome.DRY_RUN
    # A second run changes nothing.
    assert services.sync_values(actor=cli_actor, all_drifted=True).total_changed == 0
    assert drifted() == {}


def test_a_unique_collision_blocks_that_user_only(cli_actor):
    taken = make_auth_user("taken@example.com")
    collides = make_auth_user("collides-old@example.com")
    fine = make_auth_user("fine-old@example.com")
    # The new address is still held by another user's app row (that user changed theirs, and
    # another sign-up, here an SSO identity, now has it).
    change_email(taken, "taken-now@example.com")
    execute("UPDATE auth.users SET is_sso_user = true WHERE id = %s", [collides])
    change_email(collides, "taken@example.com")
    change_email(fine, "fine-new@example.com")

    result = services.sync_values(actor=cli_actor, user_ids=[collides, fine])

    assert app_email(fine) == "fine-new@example.com"
    assert app_email(collides) == "collides-old@example.com"
    (blocked,) = result.blocked
    assert blocked.user_id == collides and f"already the row of user {taken}" in blocked.reason
    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])
    assert event.outcome == AuditEvent.Outcome.PARTIAL and event.not_provisioned[0]["user_id"] == str(collides)


def test_a_row_the_database_rejects_is_isolated_to_its_user(cli_actor):
    no_email = make_auth_user("goes-null@example.com")
    fine = make_auth_user("fine-old@example.com")
    change_email(no_email, None)  # public.users.email is NOT NULL
    change_email(fine, "fine-new@example.com")

    result = services.sync_values(actor=cli_actor, user_ids=[no_email, fine])

    assert app_email(fine) == "fine-new@example.com" and app_email(no_email) == "goes-null@example.com"
    (blocked,) = result.blocked
    assert blocked.user_id == no_email and "23502" in blocked.reason


def test_only_the_columns_asked_for_and_unknown_columns_are_refused(cli_actor):
    user_id = make_auth_user("a@example.com")
    change_email(user_id, "b@example.com")

    with pytest.raises(ValueError, match="not a column copied from the auth user: points"):
        services.sync_values(actor=cli_actor, user_ids=[user_id], columns=["points"])
    assert services.sync_values(actor=cli_actor, user_ids=[user_id], tables=["wallets"]).total_changed == 0
    assert app_email(user_id) == "a@example.com"
    assert services.sync_values(actor=cli_actor, user_ids=[user_id], columns=["users.email"]).total_changed == 1


def test_sync_is_refused_to_a_viewer_and_audited(viewer):
    user_id = make_auth_user("a@example.com")
    change_email(user_id, "b@example.com")
    actor = Actor(username=viewer.username, channel=AuditEvent.Channel.WEB, user=viewer)

    with pytest.raises(ProvisioningDenied):
        services.sync_values(actor=actor, user_ids=[user_id])

    assert app_email(user_id) == "a@example.com"
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_VALUES, outcome=AuditEvent.Outcome.DENIED).count() == 1
    )


def test_orphan_removal_removes_exactly_the_orphans_children_first_and_keeps_them(cli_actor):
    live = make_auth_user()
    soft = make_auth_user(deleted=True)
    gone = make_auth_user()
    make_eloity_migration_shape()  # profiles and wallets reference public.users ON DELETE CASCADE
    execute("DELETE FROM auth.users WHERE id = %s", [gone])  # no cascade from auth: its rows stay

    preview = selectors.orphaned_rows()
    assert {t: v["count"] for t, v in preview.items()} == {
        "public.wallets": 1,
        "public.profiles": 1,
        "public.users": 1,
    }
    assert list(preview) == ["public.wallets", "public.profiles", "public.users"]  # children first

    result = services.remove_orphans(actor=cli_actor)

    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]
    assert [count(t, [live]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    assert [count(t, [soft]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]  # soft-deleted: not orphans
    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])
    assert event.action == AuditEvent.Action.REMOVE_ORPHANS and event.detail["counts"] == {
        "public.wallets": 1,
        "public.profiles": 1,
        "public.users": 1,
    }
    (wallet,) = event.detail["removed"]["public.wallets"]
    assert wallet["user_id"] == str(gone) and "usdt_balance" in wallet  # the full row, to undo by hand
    assert event.target_user_ids == [gone]
    assert selectors.orphaned_rows() == {}


def test_orphan_removal_is_refused_without_the_permission(provisioner):
    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    actor = Actor(username=provisioner.username, channel=AuditEvent.Channel.WEB, user=provisioner)

    with pytest.raises(ProvisioningDenied):
        services.remove_orphans(actor=actor)

    assert count("users", [gone]) == 1
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.REMOVE_ORPHANS, outcome=AuditEvent.Outcome.DENIED
    ).exists()


def test_sync_values_command_dry_run_then_real_run_with_provision_s_exit_codes():
    moved = make_auth_user("cli-old@example.com")
    change_email(moved, "cli-new@example.com")
    blocked = make_auth_user("cli-blocked@example.com")
    change_email(blocked, None)  # NOT NULL in public.users: the row is rejected

    code, out = run_command("sync_values", "--all-drifted", "--dry-run")
    assert code == 1  # a user would be blocked
    assert f"would set public.users.email of {moved}: 'cli-old@example.com' -> 'cli-new@example.com'" in out
    assert app_email(moved) == "cli-old@example.com"

    code, out = run_command("sync_values", "--user", "cli-new@example.com")
    assert (code, app_email(moved)) == (0, "cli-new@example.com")
    assert "Synced 1 value(s) of 1 user(s) from auth (users.email: 1)." in out

    assert run_command("sync_values", "--user", "nobody@example.com")[0] == 2
    assert run_command("sync_values", "--all-drifted", "--column", "users.points")[0] == 2
    code, out = run_command("sync_values", "--all-drifted", "--json")
    assert code == 1 and '"blocked_count": 1' in out


def test_remove_orphans_command_previews_then_removes(settings):
    settings.APPROVALS = False  # the removal itself; with approvals on it is a request (test_approvals_wiring.py)
    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])

    code, out = run_command("remove_orphans", "--dry-run")
    assert code == 0 and out.startswith("Would remove 3 orphaned row(s)")
    assert count("users", [gone]) == 1

    code, out = run_command("remove_orphans")
    assert code == 0 and out.startswith("Removed 3 orphaned row(s)")
    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]


def test_the_doctor_counts_values_that_differ_from_auth():
    from provisioning import diagnostics

    assert _check(diagnostics.run_checks(), "Values that differ from auth").status == diagnostics.OK
    moved = make_auth_user("doc-old@example.com")
    change_email(moved, "doc-new@example.com")

    found = _check(diagnostics.run_checks(), "Values that differ from auth")

    assert found.status == diagnostics.WARNING
    assert "1 in public.users.email (from auth.users.email)" in found.found
    assert "sync_values --all-drifted --dry-run" in found.advice


def _check(report, name):
    (found,) = [c for c in report.checks if c.name == name]
    return found


# --- the pages ----------------------------------------------------------------------------------

CHANGELIST = "admin:provisioning_authuser_changelist"


def test_detail_page_shows_differing_values_side_by_side_and_the_button_syncs_them(provisioner_client):
    from django.urls import reverse

    moved = make_auth_user("page-old@example.com")
    change_email(moved, "page-new@example.com")
    url = reverse("admin:provisioning_authuser_change", args=[moved])

    html = provisioner_client.get(url).content.decode()
    section = html[html.index('id="value-drift"') : html.index('id="app-visibility"')]
    assert "page-old@example.com" in section and "page-new@example.com" in section and 'id="sync-button"' in section

    response = provisioner_client.post(reverse("admin:provisioning_authuser_sync", args=[moved]), follow=True)

    assert app_email(moved) == "page-new@example.com"
    assert "Synced 1 value(s) of 1 user(s)" in " ".join(str(m) for m in response.context["messages"])
    assert 'id="value-drift"' not in response.content.decode()


def test_a_viewer_gets_no_sync_button_and_a_403_with_a_denied_event(viewer_client):
    from django.urls import reverse

    moved = make_auth_user("viewer-old@example.com")
    change_email(moved, "viewer-new@example.com")

    html = viewer_client.get(reverse("admin:provisioning_authuser_change", args=[moved])).content.decode()
    assert 'id="value-drift"' in html and 'id="sync-button"' not in html
    assert viewer_client.post(reverse("admin:provisioning_authuser_sync", args=[moved])).status_code == 403
    assert app_email(moved) == "viewer-old@example.com"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_VALUES, outcome=AuditEvent.Outcome.DENIED).exists()


def test_the_list_filter_the_bulk_action_and_sync_all(provisioner_client):
    from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
    from django.urls import reverse

    from tests.test_web_admin import listed_ids

    moved = [make_auth_user(f"bulk-old{i}@example.com") for i in range(3)]
    for i, user_id in enumerate(moved):
        change_email(user_id, f"bulk-new{i}@example.com")
    make_auth_user("steady@example.com")
    assert listed_ids(provisioner_client, status="drifted") == set(moved)

    # The bulk action: a preview first, then the run.
    data = {"action": "sync_selected", ACTION_CHECKBOX_NAME: [str(moved[0])]}
    preview = provisioner_client.post(reverse(CHANGELIST), data)
    assert preview.status_code == 200 and "bulk-old0@example.com" in preview.content.decode()
    assert app_email(moved[0]) == "bulk-old0@example.com"
    provisioner_client.post(reverse(CHANGELIST), {**data, "post": "yes"})
    assert app_email(moved[0]) == "bulk-new0@example.com"

    # "Sync all drifted…": the preview names the rest, the POST syncs them.
    page = provisioner_client.get(reverse("admin:provisioning_authuser_sync_all")).content.decode()
    assert "bulk-old1@example.com" in page and "bulk-new2@example.com" in page and 'id="sync-all-button"' in page
    done = provisioner_client.post(reverse("admin:provisioning_authuser_sync_all"), follow=True)
    assert [app_email(u) for u in moved] == [f"bulk-new{i}@example.com" for i in range(3)]
    # Back on the list, compared with auth again: nothing left, and the note says so.
    assert list(done.context["cl"].result_list) == [] and "(0 users differed)" in done.content.decode()
    assert 'id="no-drift"' in provisioner_client.get(reverse("admin:provisioning_authuser_sync_all")).content.decode()


def test_the_drifted_list_shows_the_app_value_and_the_auth_value_as_columns(viewer_client):
    import re

    from django.urls import reverse

    moved = make_auth_user("column-old@example.com")
    change_email(moved, "column-new@example.com")
    make_auth_user("steady@example.com")

    html = viewer_client.get(reverse(CHANGELIST), {"status": "drifted"}).content.decode()
    plain = viewer_client.get(reverse(CHANGELIST)).content.decode()

    assert 'class="column-app_value"' in html and 'class="column-auth_value"' in html
    (app,) = re.findall(r'<td class="field-app_value">(.*?)</td>', html, re.S)
    (auth,) = re.findall(r'<td class="field-auth_value">(.*?)</td>', html, re.S)
    assert "public.users.email" in app and "column-old@example.com" in app and "column-new" not in app
    assert "public.users.email" in auth and "column-new@example.com" in auth
    assert "column-app_value" not in plain  # only the "Values differ" list has them


def test_the_orphans_page_previews_and_only_the_permission_removes(provisioner_client, provisioner, settings):
    settings.APPROVALS = False  # the removal itself; with approvals on it is a request (test_approvals_wiring.py)
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    gone = make_auth_user()
    execute("DELETE FROM auth.users WHERE id = %s", [gone])
    url = reverse("admin:provisioning_authuser_orphans")

    page = provisioner_client.get(url).content.decode()
    assert str(gone) in page and 'id="orphans-no-permission"' in page and 'id="remove-orphans-button"' not in page
    assert provisioner_client.post(url).status_code == 403
    assert count("users", [gone]) == 1

    provisioner.user_permissions.add(Permission.objects.get(codename="remove_orphans"))
    provisioner_client.force_login(type(provisioner).objects.get(pk=provisioner.pk))
    assert 'id="remove-orphans-button"' in provisioner_client.get(url).content.decode()
    # A second confirmation names the row count (tests/test_web_orphans.py), then removes.
    assert "Remove 3 orphaned rows for good?" in provisioner_client.post(url).content.decode()
    provisioner_client.post(url, {"confirmed_rows": "3"})
    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]
    assert 'id="no-orphans"' in provisioner_client.get(url).content.decode()


# --- the trigger side ---------------------------------------------------------------------------


def test_the_generated_update_trigger_keeps_a_changed_email_in_step_and_never_blocks_the_change():
    code, generated = run_command("provisioning_trigger_sql", "--sync-on-update")
    assert code == 0 and "AFTER UPDATE OF email ON auth.users" in generated
    execute(generated)
    user_id = make_auth_user("trigger-old@example.com")
    orphan = uuid.uuid4()  # an app row whose auth user is gone still holds an address
    execute("INSERT INTO public.users (id, email) VALUES (%s, 'held@example.com')", [orphan])

    change_email(user_id, "trigger-new@example.com")
    assert app_email(user_id) == "trigger-new@example.com"

    # Another row holds the address: the user's own change still succeeds, and the drift
    # report shows them.
    change_email(user_id, "held@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM auth.users WHERE id = %s", [user_id])
        assert cursor.fetchone()[0] == "held@example.com"
    assert app_email(user_id) == "trigger-new@example.com" and app_email(orphan) == "held@example.com"
    assert drifted() == {"public.users.email": 1}
    # A sign-in (Supabase updates last_sign_in_at) does not fire it.
    execute("UPDATE auth.users SET last_sign_in_at = now() WHERE id = %s", [user_id])


def test_all_drifted_in_small_batches_walks_every_drifted_user_once(cli_actor):
    moved = [make_auth_user(f"walk-old{i}@example.com") for i in range(5)]
    for i, user_id in enumerate(moved):
        change_email(user_id, f"walk-new{i}@example.com")
    for _ in range(4):
        make_auth_user()  # in step: never visited

    result = services.sync_values(actor=cli_actor, all_drifted=True, batch_size=2)

    assert (result.batches, result.total_changed) == (3, 5)
    assert [app_email(u) for u in moved] == [f"walk-new{i}@example.com" for i in range(5)]
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SYNC_VALUES).count() == 3


def test_two_users_wanting_the_same_new_value_are_both_blocked_and_the_rest_synced(cli_actor):
    first = make_auth_user("first-old@example.com")
    second = make_auth_user("second-old@example.com", is_sso_user=True)  # SSO identities may share an email
    fine = make_auth_user("fine-old@example.com")
    change_email(first, "shared@example.com")
    change_email(second, "shared@example.com")
    change_email(fine, "fine-new@example.com")

    result = services.sync_values(actor=cli_actor, all_drifted=True)

    assert {b.user_id for b in result.blocked} == {first, second}
    assert all("2 users being synced would all get 'shared@example.com'" in b.reason for b in result.blocked)
    assert (app_email(first), app_email(second), app_email(fine)) == (
        "first-old@example.com",
        "second-old@example.com",
        "fine-new@example.com",
    )


def test_a_value_freed_in_the_same_batch_is_taken_by_the_user_who_wants_it(cli_actor):
    # B moves from b@ to c@, and A (an SSO identity) now has b@: A's new value is free only
    # once B's row has moved.
    a = make_auth_user("a@example.com", is_sso_user=True)
    b = make_auth_user("b@example.com")
    change_email(b, "c@example.com")
    change_email(a, "b@example.com")

    result = services.sync_values(actor=cli_actor, all_drifted=True)

    assert (app_email(a), app_email(b)) == ("b@example.com", "c@example.com")
    assert result.ok and result.total_changed == 2
    assert drifted() == {}


def test_orphan_secrets_are_never_shown_nor_kept_in_the_audit_event(cli_actor, viewer_client):
    from django.urls import reverse

    gone = make_auth_user()
    execute("UPDATE public.wallets SET backup_seed = 'SEED-MARKER-77' WHERE user_id = %s", [gone])
    execute("DELETE FROM auth.users WHERE id = %s", [gone])

    page = viewer_client.get(reverse("admin:provisioning_authuser_orphans")).content.decode()
    result = services.remove_orphans(actor=cli_actor)

    assert str(gone) in page and "SEED-MARKER-77" not in page and "backup_seed (secrets)" in page
    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])
    assert "SEED-MARKER-77" not in str(event.detail)
    assert event.detail["withheld_columns"] == {
        "public.wallets": ["backup_seed"],
        "public.profiles": ["bank_account_name", "bank_account_number"],
    }
    assert count("wallets", [gone]) == 0


def test_orphan_removal_is_refused_when_it_would_take_rows_it_does_not_record(cli_actor, settings):
    settings.APPROVALS = False  # the removal itself; with approvals on it is a request (test_approvals_wiring.py)
    gone = make_auth_user()
    execute(
        "CREATE TABLE public.posts (id serial PRIMARY KEY, "
        "user_id uuid REFERENCES public.users (id) ON DELETE CASCADE, body text)"
    )
    execute("INSERT INTO public.posts (user_id, body) VALUES (%s, 'hello')", [gone])
    execute("DELETE FROM auth.users WHERE id = %s", [gone])

    code, out = run_command("remove_orphans")

    assert code == 1 and "1 row(s) of public.posts (posts_user_id_fkey, ON DELETE CASCADE)" in out
    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [1, 1, 1]
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.REMOVE_ORPHANS, outcome=AuditEvent.Outcome.FAILED
    ).exists()

    execute("DELETE FROM public.posts")
    assert run_command("remove_orphans")[0] == 0
    assert [count(t, [gone]) for t in ("users", "profiles", "wallets")] == [0, 0, 0]


def test_a_row_changed_after_the_batch_read_it_is_written_from_live_values_and_recorded_as_replaced(
    cli_actor, monkeypatch
):
    """The batch reads the drifted rows first, then writes them by location. A row another
    session changes in between is not overwritten from the stale read: it is written again
    from live values, and the audit event's old value is the one really replaced."""
    moved = make_auth_user("read-old@example.com")
    steady = make_auth_user("read-steady-old@example.com")
    change_email(moved, "read-new@example.com")
    change_email(steady, "read-steady-new@example.com")
    fill = services._fill_batch
    batches = []

    def fill_then_someone_writes(*args, **kwargs):
        found = fill(*args, **kwargs)
        if not batches:  # the first batch only
            execute("UPDATE public.users SET email = 'edited-meanwhile@example.com' WHERE id = %s", [moved])
        batches.append(found)
        return found

    monkeypatch.setattr(services, "_fill_batch", fill_then_someone_writes)
    result = services.sync_values(actor=cli_actor, all_drifted=True)

    assert (app_email(moved), app_email(steady)) == ("read-new@example.com", "read-steady-new@example.com")
    assert result.ok and result.changed == {"users.email": 2}
    (event,) = AuditEvent.objects.filter(pk__in=result.audit_event_ids)
    assert sorted(event.detail["changes"]["public.users.email"]) == sorted(
        [
            [str(moved), "edited-meanwhile@example.com", "read-new@example.com"],
            [str(steady), "read-steady-old@example.com", "read-steady-new@example.com"],
        ]
    )


def _listed(client, **params) -> tuple[list[uuid.UUID], str]:
    from django.urls import reverse

    response = client.get(reverse(CHANGELIST), {"status": "drifted", **params}, follow=True)
    assert response.status_code == 200
    assert "recheck" not in response.request["QUERY_STRING"]  # "Compare now" scans, then lands without it
    return [u.pk for u in response.context["cl"].result_list], response.content.decode()


def test_the_drifted_list_reads_the_last_scan_checks_each_user_again_and_compares_again_on_demand(
    viewer_client, monkeypatch
):
    from datetime import timedelta

    from provisioning.models import DriftedUser, DriftScan

    first = make_auth_user("scan-first-old@example.com")
    change_email(first, "scan-first-new@example.com")

    listed, html = _listed(viewer_client)
    assert listed == [first]
    assert DriftScan.objects.get().users == 1 and list(DriftedUser.objects.values_list("user_id", flat=True)) == [first]
    assert 'id="drift-scan"' in html and "1 user differed" in html

    # In step again (Supabase Auth changed it back): gone at once, though the scan still names them.
    change_email(first, "scan-first-old@example.com")
    later = make_auth_user("scan-later-old@example.com")
    change_email(later, "scan-later-new@example.com")
    listed, html = _listed(viewer_client)
    assert listed == [] and DriftedUser.objects.filter(user_id=first).exists()
    # A user who drifted after the scan appears at the next comparison: "Compare now".
    assert 'id="drift-recheck"' in html
    assert _listed(viewer_client, recheck=1)[0] == [later]
    assert list(DriftedUser.objects.values_list("user_id", flat=True)) == [later]

    # A minute later, viewing the list compares again on its own.
    third = make_auth_user("scan-third-old@example.com")
    change_email(third, "scan-third-new@example.com")
    assert _listed(viewer_client)[0] == [later]
    monkeypatch.setattr(services, "DRIFT_SCAN_MAX_AGE", timedelta(0))
    assert sorted(_listed(viewer_client)[0]) == sorted([later, third])


def test_without_a_key_index_the_drifted_list_joins_live_and_keeps_no_scan(viewer_client, monkeypatch):
    from provisioning.engine import catalog
    from provisioning.models import DriftScan

    monkeypatch.setattr(catalog, "key_indexed", lambda keys: False)  # as on a key without an index
    moved = make_auth_user("join-old@example.com")
    change_email(moved, "join-new@example.com")

    listed, html = _listed(viewer_client)

    assert listed == [moved] and 'id="drift-scan"' not in html
    assert not DriftScan.objects.exists()


def test_the_audit_event_records_the_value_stored_when_an_app_trigger_rewrites_it(cli_actor):
    moved = make_auth_user("rewritten-old@example.com")
    change_email(moved, "Rewritten-New@Example.com")
    execute(
        "CREATE FUNCTION public.lower_email() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "NEW.email := lower(NEW.email); RETURN NEW; END $$; CREATE TRIGGER lower_email BEFORE UPDATE ON public.users "
        "FOR EACH ROW EXECUTE FUNCTION public.lower_email()"
    )

    result = services.sync_values(actor=cli_actor, all_drifted=True)

    assert app_email(moved) == "rewritten-new@example.com"
    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])
    assert event.detail["changes"]["public.users.email"] == [
        [str(moved), "rewritten-old@example.com", "rewritten-new@example.com"]
    ]
    # Still not what auth holds: the next run writes nothing and says why.
    again = services.sync_values(actor=cli_actor, all_drifted=True)
    (blocked,) = again.blocked
    assert again.total_changed == 0 and "still differs from auth after syncing" in blocked.reason
