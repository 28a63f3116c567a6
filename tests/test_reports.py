"""What a report says after a run (issue 22, items 4, 5, 11 and 13): failures grouped by
table and reason with their counts at the top of every report (CLI text, --json, job
page, audit event page), one vocabulary of outcomes, what a preview previewed, and a sync
shown as old -> new values."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.urls import reverse

from provisioning import jobs
from provisioning.actors import Actor
from provisioning.drift import services as drift_services
from provisioning.engine import services
from provisioning.models import AuditEvent, ProvisioningJob
from tests.factories import execute, make_auth_user, make_many_auth_users, run_command

pytestmark = pytest.mark.django_db

RARE = "wallets are not opened for sanctioned regions"
#: More users refused by the CHECK than a report lists (services.SAMPLE_SIZE is 200).
COMMON = 230


def _text(response) -> str:
    """The page as a person reads it: no tags, entities decoded, spaces collapsed."""
    body = response.content.decode()
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"</?(strong|em|span|abbr|b|i)\b[^>]*>", "", body)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


@pytest.fixture
def refusing_schema():
    """A CHECK on public.users that refuses COMMON sign-ups and a trigger on public.wallets
    that refuses one (the rare reason), built in the test's transaction (rolled back)."""
    common = make_many_auth_users(COMMON, prefix="blocked")
    rare = make_auth_user("sanctioned@example.com", keep=())
    fine = make_auth_user("fine@example.com", keep=())
    execute("DELETE FROM public.wallets WHERE user_id = ANY(%s)", [common])
    execute("DELETE FROM public.profiles WHERE user_id = ANY(%s)", [common])
    execute("DELETE FROM public.users WHERE id = ANY(%s)", [common])
    execute("ALTER TABLE public.users ADD CONSTRAINT users_not_blocked CHECK (email NOT LIKE 'blocked-%%') NOT VALID")
    execute(
        "CREATE FUNCTION public.refuse_sanctioned() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM auth.users u WHERE u.id = NEW.user_id AND u.email LIKE 'sanctioned%%') THEN "
        f"RAISE EXCEPTION '{RARE}'; END IF; RETURN NEW; END $$; "
        "CREATE TRIGGER refuse_sanctioned BEFORE INSERT ON public.wallets "
        "FOR EACH ROW EXECUTE FUNCTION public.refuse_sanctioned()"
    )
    return {"common": common, "rare": rare, "fine": fine}


def _rare_group(groups: list[dict]) -> dict:
    (group,) = [g for g in groups if RARE in g["reason"]]
    return group


# --- item 13: failures grouped by table and reason, at the top of every report -------------------


def test_the_cli_text_starts_with_every_reason_and_its_count(refusing_schema):
    code, out = run_command("provision", "--all-missing")

    assert code == 1
    lines = out.splitlines()
    first_item = next(i for i, line in enumerate(lines) if line.startswith("not provisioned:"))
    summary = lines[:first_item]
    (rare_line,) = [line for line in summary if RARE in line]
    assert re.match(r"^ +1  public\.wallets: ", rare_line) and "sanctioned@example.com" in rare_line
    (common_line,) = [line for line in summary if "users_not_blocked" in line]
    assert re.match(rf"^ +{COMMON}  public\.users: ", common_line)
    # The list itself is still capped; the rare user is beyond its end.
    assert RARE not in "\n".join(lines[first_item:])


def test_the_json_starts_with_every_reason_and_its_count(refusing_schema):
    code, out = run_command("provision", "--all-missing", "--json")

    assert code == 1
    data = json.loads(out)
    assert next(iter(data)) == "failures_by_reason"
    rare = _rare_group(data["failures_by_reason"])
    assert (rare["table"], rare["count"], rare["user_ids"]) == ("wallets", 1, [str(refusing_schema["rare"])])
    common = [g for g in data["failures_by_reason"] if "users_not_blocked" in g["reason"]]
    assert [(g["table"], g["count"]) for g in common] == [("users", COMMON)]
    assert len(data["not_provisioned"]) == services.SAMPLE_SIZE
    assert RARE not in json.dumps(data["not_provisioned"])


def test_the_job_page_and_the_audit_event_page_start_with_the_reasons(refusing_schema, provisioner_client, provisioner):
    actor = Actor(username=provisioner.username, channel=AuditEvent.Channel.WEB, user=provisioner)
    job = jobs.start_provision_all_job(actor=actor)
    jobs.run_job(job.pk)

    page = _text(provisioner_client.get(reverse("provisioning_job", args=[job.pk])))
    assert f"1 public.wallets {RARE}" in page and "sanctioned@example.com" in page
    assert f"{COMMON} public.users" in page

    (event,) = AuditEvent.objects.filter(run_id=job.run_id, action=AuditEvent.Action.PROVISION_ALL_MISSING)
    response = provisioner_client.get(reverse("admin:provisioning_auditevent_change", args=[event.pk]))
    event_page = _text(response)
    assert f"1 public.wallets {RARE}" in event_page
    # At the top, before the users and the list (which stops at 200, before the rare one).
    assert event_page.index(RARE) < event_page.index("Users targeted")
    assert event_page.index(f"{COMMON} public.users") < event_page.index("Not provisioned")


def test_the_result_counts_every_reason_beyond_the_sample(refusing_schema, cli_actor):
    result = services.provision_all_missing(actor=cli_actor)

    groups = {(g.table, g.reason.split(" (SQLSTATE")[0][:30]): g.count for g in result.failure_groups}
    assert sum(groups.values()) == result.not_provisioned_count == COMMON + 1
    assert _rare_group([g.as_dict() for g in result.failure_groups])["count"] == 1


# --- item 5: one vocabulary for outcomes; a link to exactly the users a job could not provision --


@pytest.fixture
def phone_only_job(provisioner):
    """A finished job that provisioned one user and could not provision two phone-only users
    (public.users.email is NOT NULL)."""
    fine = make_auth_user(keep=())
    phones = [make_auth_user(phone=f"1555010{i}", keep=()) for i in range(2)]
    actor = Actor(username=provisioner.username, channel=AuditEvent.Channel.WEB, user=provisioner)
    job = jobs.start_provision_all_job(actor=actor)
    jobs.run_job(job.pk)
    job.refresh_from_db()
    return job, fine, phones


def test_a_finished_job_with_failures_reads_partly_succeeded_everywhere(phone_only_job, provisioner_client):
    job, _, _ = phone_only_job
    assert job.not_provisioned_count > 0

    status = provisioner_client.get(reverse("provisioning_job_status", args=[job.pk])).json()
    assert (status["outcome"], status["state_label"]) == ("partial", "Partly succeeded")
    page = _text(provisioner_client.get(reverse("provisioning_job", args=[job.pk])))
    assert "State: Partly succeeded" in page and "Succeeded" not in page.replace("Partly succeeded", "")
    listing = _text(provisioner_client.get(reverse("provisioning_jobs")))
    assert f"Job {job.pk} Partly succeeded" in listing
    batch = AuditEvent.objects.get(run_id=job.run_id, action=AuditEvent.Action.PROVISION_ALL_MISSING)
    assert batch.get_outcome_display() == "Partly succeeded"


def test_the_cli_says_the_outcome_in_the_same_words():
    make_auth_user(keep=())
    make_auth_user(phone="15550199", keep=())
    code, out = run_command("provision", "--all-missing")
    assert code == 1 and out.startswith("Partly succeeded: ")

    make_auth_user(keep=())
    code, out = run_command("provision", "--all-missing", "--dry-run")
    assert code == 1 and out.startswith("Dry run: ")


def test_the_job_links_to_exactly_the_users_it_could_not_provision(phone_only_job, provisioner_client):
    job, fine, phones = phone_only_job
    later = make_auth_user(phone="15550177", keep=())  # cannot be provisioned either, but not by this job

    page = provisioner_client.get(reverse("provisioning_job", args=[job.pk])).content.decode()
    link = reverse("admin:provisioning_authuser_changelist") + f"?job={job.pk}"
    assert f'href="{link}"' in page

    listing = provisioner_client.get(link)
    assert listing.status_code == 200
    shown = {u.pk for u in listing.context["cl"].result_list}
    assert shown == set(phones)
    assert fine not in shown and later not in shown
    assert f"Could not be provisioned by job {job.pk}" in _text(listing)


def test_an_unknown_job_in_the_list_filter_is_said_and_shows_nobody(provisioner_client):
    make_auth_user(keep=())
    listing = provisioner_client.get(reverse("admin:provisioning_authuser_changelist") + "?job=999999")
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == []
    assert "There is no job 999999" in _text(listing)
    garbage = provisioner_client.get(reverse("admin:provisioning_authuser_changelist") + "?job=abc")
    assert garbage.status_code == 200 and "There is no job abc" in _text(garbage)


def test_the_queued_message_does_not_outlive_the_queue(provisioner_client):
    make_auth_user(keep=("users",))
    provisioner_client.post(reverse("admin:provisioning_authuser_provision_all"))
    job = ProvisioningJob.objects.get()
    jobs.run_job(job.pk)

    page = _text(provisioner_client.get(reverse("provisioning_job", args=[job.pk])))
    assert "State: Succeeded" in page
    assert "queued" not in page.lower()


# --- item 4: a preview says what it previewed ------------------------------------------------------


def test_a_preview_in_the_audit_log_shows_the_rows_and_users_it_would_write(provisioner_client):
    for _ in range(3):
        make_auth_user(keep=("users",))  # each lacks a profile and a wallet
    make_auth_user(keep=())  # lacks all three
    response = provisioner_client.get(reverse("admin:provisioning_authuser_provision_all"))
    assert response.status_code == 200
    event = AuditEvent.objects.get(outcome=AuditEvent.Outcome.DRY_RUN)

    listing = _text(provisioner_client.get(reverse("admin:provisioning_auditevent_changelist")))
    assert "Dry run would create 9 rows 4" in listing

    detail = _text(provisioner_client.get(reverse("admin:provisioning_auditevent_change", args=[event.pk])))
    assert "A dry run: nothing was written. It would create 9 rows for 4 users:" in detail
    assert "public.users: 1" in detail and "public.profiles: 4" in detail and "public.wallets: 4" in detail


# --- item 11: a sync is a table of user, column, old, new ------------------------------------------


def test_a_sync_event_shows_user_column_old_and_new(provisioner_client, cli_actor):
    user_id = make_auth_user("before@example.com")
    execute("UPDATE auth.users SET email = 'after@example.com' WHERE id = %s", [user_id])
    result = drift_services.sync_values(actor=cli_actor, user_ids=[user_id])
    event = AuditEvent.objects.get(pk=result.audit_event_ids[0])

    page = _text(provisioner_client.get(reverse("admin:provisioning_auditevent_change", args=[event.pk])))
    assert "user column old new" in page
    short = str(user_id)[:8]
    assert f"after@example.com {short} copy public.users.email before@example.com after@example.com" in page
    assert "Rows created" not in page and "Not provisioned: None" not in page

    history = _text(provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])))
    assert "Sync values from auth Succeeded public.users.email: before@example.com → after@example.com" in history


def test_the_user_history_names_the_rows_a_provisioning_created(provisioner_client, cli_actor):
    user_id = make_auth_user(keep=())
    services.provision_users(actor=cli_actor, user_ids=[user_id])
    history = _text(provisioner_client.get(reverse("admin:provisioning_authuser_change", args=[user_id])))
    assert "Provision one user Succeeded created public.users, public.profiles, public.wallets" in history


def test_a_sync_report_starts_with_its_blocked_users_by_reason():
    moved = make_auth_user("moves@example.com")
    emptied = make_auth_user("emptied@example.com")
    execute("UPDATE auth.users SET email = 'moved@example.com' WHERE id = %s", [moved])
    execute("UPDATE auth.users SET email = NULL WHERE id = %s", [emptied])  # NOT NULL in public.users

    code, out = run_command("sync_values", "--all-drifted")

    assert code == 1 and out.startswith("Partly succeeded: ")
    lines = out.splitlines()
    first_item = next(i for i, line in enumerate(lines) if line.startswith("blocked: "))
    assert any(re.match(r"^ +1  public\.users: .*not-null", line) for line in lines[:first_item])
    code, out = run_command("sync_values", "--all-drifted", "--json")
    data = json.loads(out)
    assert next(iter(data)) == "blocked_by_reason" and data["blocked_by_reason"][0]["count"] == 1


def test_the_bulk_action_s_messages_start_with_every_reason_and_its_count(refusing_schema, provisioner_client):
    ids = [*refusing_schema["common"], refusing_schema["rare"], refusing_schema["fine"]]
    data = {"action": "provision_selected", "_selected_action": [str(i) for i in ids], "post": "yes"}

    response = provisioner_client.post(reverse("admin:provisioning_authuser_changelist"), data, follow=True)

    shown = [str(m) for m in response.context["messages"]]
    first_item = next(i for i, text in enumerate(shown) if text.startswith("Not provisioned:"))
    by_reason = [text for text in shown[:first_item] if text.startswith("Could not be provisioned: ")]
    assert any(f"1 user, public.wallets: {RARE}" in text and "sanctioned@example.com" in text for text in by_reason)
    assert any(text.startswith(f"Could not be provisioned: {COMMON} users, public.users: ") for text in by_reason)


def test_the_provision_all_preview_starts_with_every_reason_and_its_count(provisioner_client):
    make_auth_user(phone="15550123", keep=())
    make_auth_user(phone="15550124", keep=())
    make_auth_user(keep=("users",))

    page = _text(provisioner_client.get(reverse("admin:provisioning_authuser_provision_all")))

    section = page[page.index("Cannot be provisioned, by reason") :]
    assert re.search(r"Users Table Reason For example 2 public\.users auth user has no email", section)


def test_the_home_page_counts_a_preview_s_rows_as_counted(provisioner_client):
    for _ in range(3):
        make_auth_user(keep=("users",))
    provisioner_client.get(reverse("admin:provisioning_authuser_provision_all"))

    home = _text(provisioner_client.get(reverse("admin:index")))
    assert "Provision all missing — dry run, 6 rows" in home
