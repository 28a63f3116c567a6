"""The dashboard's index of who each auth event is about (issue 25, "Speed"): it equals a
live read of the log after any mix of entries (late-committed ones and payloads PostgreSQL
cannot decode included), the timeline reads it and the page says up to when, rebuilds, and a
fresh install reads the log directly until the index is built. Asserted on rows."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.account import event_index
from provisioning.models import AuditEvent, AuthEventIndex, AuthEventIndexState
from tests.account_rows import add_event
from tests.factories import execute, make_auth_user, run_command

pytestmark = pytest.mark.django_db

NIL = "00000000-0000-0000-0000-000000000000"
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def page(client, user_id, **params) -> str:
    response = client.get(reverse("admin:provisioning_authuser_change", args=[user_id]), params)
    assert response.status_code == 200
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start : html.index("</div>", start)]


def rows_of(html: str) -> list[str]:
    """The timeline's table rows, as shown (notes left out)."""
    return re.findall(r'<tr class="timeline-.*?</tr>', section(html, "timeline"), re.S)


def reference() -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Who each entry is about, worked out here from the stored text of every payload: the
    actor and traits.user_id of an object; every UUID in anything else, and in a payload
    holding an escape PostgreSQL cannot decode (\\u0000, a surrogate)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, payload::text FROM auth.audit_log_entries")
        entries = cursor.fetchall()
    pairs = set()
    for entry_id, text in entries:
        try:
            payload = json.loads(text) if text is not None else None
        except ValueError:
            payload = None
        if text and re.search(r"\\u(0000|[dD][89a-fA-F])", text):
            payload = None
        if isinstance(payload, dict):
            traits = payload.get("traits") if isinstance(payload.get("traits"), dict) else {}
            named = [payload.get("actor_id"), traits.get("user_id")]
            found = [v for v in named if isinstance(v, str) and UUID.fullmatch(v)]
        else:
            found = UUID.findall(text or "")
        pairs |= {(entry_id, uuid.UUID(v)) for v in found if v != NIL}
    return pairs


def indexed() -> set[tuple[uuid.UUID, uuid.UUID]]:
    return set(AuthEventIndex.objects.values_list("entry_id", "user_id"))


def add_raw(payload: str | None, created_at: str = "now() - interval '1 hour'") -> uuid.UUID:
    entry_id = uuid.uuid4()
    execute(
        "INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)"
        f" VALUES ('{NIL}', %s, %s::json, {created_at}, '198.51.100.4')",
        [entry_id, payload],
    )
    return entry_id


BAD_PAYLOADS = (
    None,  # SQL NULL
    "null",
    '"just a string {user}"',
    '"twice: {user} {user}"',  # one index row, not two
    '[1, 2, "{user}"]',
    "42",
    '{{"actor_id": "{user}"}}',  # no action, no traits
    '{{"action": 5, "actor_id": "{user}", "traits": "x"}}',
    '{{"action": "login", "actor_id": "\\u0000{user}"}}',  # ->> would raise on \u0000
    '{{"action": "login\\ud800", "actor_id": "{user}", "traits": {{"user_id": "\\ud800"}}}}',  # lone surrogate
    '{{"action": "user_modified", "actor_id": "not-a-uuid", "traits": {{"user_id": "{user}"}}}}',
    '{{"action": "login", "actor_id": "{upper}"}}',  # upper-case id
)


def test_the_index_equals_a_live_read_after_any_mix_of_entries():
    alice, bob = make_auth_user(), make_auth_user()
    add_event(alice, "user_signedup", traits={"provider": "email"}, ago="3 days")
    add_event(alice, "login", traits={"provider": "google"}, ago="2 days")
    add_event(bob, "user_modified", actor=NIL, username="service_role", traits={"user_id": str(bob)}, ago="1 day")
    add_event(alice, "user_invited", actor=bob, traits={"user_id": str(alice)}, ago="5 hours")  # about both
    add_event(alice, "factor_deleted", traits={"user_id": str(alice)}, ago="4 hours")  # about one, once
    for raw in BAD_PAYLOADS:
        add_raw(raw and raw.format(user=alice, upper=str(alice).upper()))

    first = event_index.catch_up()  # no index yet: builds it

    assert first.built and indexed() == reference()
    assert (event_index.catch_up().written, indexed()) == (0, reference())  # nothing new: nothing written
    # New entries, one committed late: created_at older than the newest already read.
    state = AuthEventIndexState.objects.get()
    add_event(bob, "login", traits={"provider": "email"}, ago="1 minute")
    late = add_raw(json.dumps({"actor_id": str(bob), "action": "logout"}))
    execute(
        "UPDATE auth.audit_log_entries SET created_at = %s - interval '2 minutes' WHERE id = %s",
        [state.watermark_created_at, late],
    )
    done = event_index.catch_up()
    assert not done.built and done.written == 2
    assert (late, bob) in indexed() and indexed() == reference()
    assert by_user_of(alice, "user_invited") is False and by_user_of(bob, "user_invited") is True


def by_user_of(user_id, action):
    return AuthEventIndex.objects.get(user_id=user_id, action=action).by_user


def test_an_entry_committed_later_than_the_overlap_waits_for_the_rebuild():
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"}, ago="1 minute")
    event_index.catch_up()
    watermark = AuthEventIndexState.objects.get().watermark_created_at
    very_late = add_raw(json.dumps({"actor_id": str(user), "action": "logout"}))
    execute(
        "UPDATE auth.audit_log_entries SET created_at = %s WHERE id = %s",
        [watermark - event_index.OVERLAP * 2, very_late],
    )

    event_index.catch_up()
    assert (very_late, user) not in indexed()  # the documented limit

    code, out = run_command("auth_events_index", "--rebuild")
    assert code == 0 and "built (asked)" in out and "events up to" in out
    assert (very_late, user) in indexed() and indexed() == reference()


def test_rebuild_drops_entries_gone_from_the_log_and_keeps_the_rest():
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"})
    gone = add_raw(json.dumps({"actor_id": str(user), "action": "logout"}))
    event_index.build()
    execute("DELETE FROM auth.audit_log_entries WHERE id = %s", [gone])
    done = event_index.build()
    assert done.written == 1 and done.state.rows == 1 and indexed() == reference()


def test_the_timeline_reads_the_index_and_fetches_only_its_page_by_id(viewer_client):
    user, other = make_auth_user(), make_auth_user()
    for hour in range(30):
        add_event(user, "token_refreshed", ago=f"{hour} hours")
    add_event(other, "login", traits={"provider": "email"})
    event_index.catch_up()

    with CaptureQueriesContext(connection) as queries:
        first = page(viewer_client, user)
    reads = [q["sql"] for q in queries.captured_queries if '"auth"."audit_log_entries"' in q["sql"]]
    assert len(reads) == 1 and "unnest" in reads[0]  # the page's entries, by id
    assert not [q for q in queries.captured_queries if "LIKE" in q["sql"] and "audit_log_entries" in q["sql"]]
    assert "Auth events up to" in section(first, "timeline") and "being built" not in first
    assert section(first, "timeline").count("session refreshed") == 25 and "older" in section(first, "timeline")
    second = section(page(viewer_client, user, timeline_page=2), "timeline")
    assert second.count("session refreshed") == 5 and "newer" in second


def test_later_pages_go_past_the_direct_reads_limit(viewer_client):
    user = make_auth_user()
    execute(
        "INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)"
        " SELECT %s, gen_random_uuid(), json_build_object('actor_id', %s::text, 'action', 'token_refreshed'),"
        " now() - n * interval '1 minute', '' FROM generate_series(1, 600) n",
        [NIL, str(user)],
    )
    event_index.catch_up()
    assert "older" in section(page(viewer_client, user, timeline_page=23), "timeline")
    html = section(page(viewer_client, user, timeline_page=24), "timeline")  # entries 576 to 600: the last page
    assert html.count("session refreshed") == 25 and "Page 24" in html and "older" not in html


def test_an_entry_after_the_catch_up_is_pending_until_the_next_one(viewer_client):
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"}, ago="2 hours")
    event_index.catch_up()
    add_event(user, "user_recovery_requested", ago="1 second")
    assert "asked for a password reset" not in section(page(viewer_client, user), "timeline")
    event_index.catch_up()
    html = section(page(viewer_client, user), "timeline")
    assert "asked for a password reset" in html
    shown = re.search(r"Auth events up to <time[^>]*>(\d\d:\d\d:\d\d)</time>", html).group(1)
    from django.utils import timezone

    assert shown == timezone.localtime(AuthEventIndexState.objects.get().caught_up_at).strftime("%H:%M:%S")


@pytest.mark.parametrize("kind", ["", "signins", "errors", "staff"])
def test_the_index_shows_what_the_direct_read_shows_for_every_filter(viewer_client, provisioner, kind):
    user = make_auth_user()
    AuditEvent.objects.create(
        actor=provisioner,
        actor_username="prov",
        channel="web",
        action=AuditEvent.Action.SYNC_VALUES,
        outcome="succeeded",
        target_user_ids=[user],
    )
    add_event(user, "user_signedup", traits={"provider": "email"}, ago="5 days")
    add_event(user, "login", traits={"provider": "google"}, ago="3 days")
    add_event(user, "user_repeated_signup", traits={"provider": "email"}, ago="2 days")
    add_event(user, "user_modified", actor=NIL, username="service_role", traits={"user_id": str(user)}, ago="2 seconds")
    add_event(user, "", payload=json.dumps(["not", "an", "object", str(user)]), ago="1 day")
    add_event(user, "", payload=json.dumps({"actor_id": str(user), "action": 5}), ago="6 hours")

    direct = page(viewer_client, user, timeline=kind)
    assert "being built" in section(direct, "timeline")  # fresh install: read directly, and said
    event_index.catch_up()
    from_index = page(viewer_client, user, timeline=kind)

    assert rows_of(from_index) == rows_of(direct) and rows_of(direct)
    assert "Auth events up to" in section(from_index, "timeline")


def test_a_user_without_entries_is_not_told_the_log_is_off_when_the_index_saw_recent_ones(viewer_client):
    quiet, busy = make_auth_user(), make_auth_user()
    execute("UPDATE auth.users SET last_sign_in_at = now() WHERE id = %s", [busy])
    add_event(busy, "login", traits={"provider": "email"})
    event_index.catch_up()
    with CaptureQueriesContext(connection) as queries:
        html = page(viewer_client, quiet)
    assert 'id="timeline-silent"' not in html
    assert not [q for q in queries.captured_queries if "FROM auth.audit_log_entries WHERE created_at" in q["sql"]]


def test_the_command_says_when_the_log_cannot_be_indexed():
    execute("DROP TABLE auth.audit_log_entries")
    code, out = run_command("auth_events_index")
    assert code == 2 and "cannot be indexed" in out
    assert not AuthEventIndexState.objects.exists()


def test_a_page_without_the_log_still_shows_the_dashboards_events(viewer_client, provisioner):
    user = make_auth_user()
    add_event(user, "login", traits={"provider": "email"})
    event_index.catch_up()
    AuditEvent.objects.create(
        actor=provisioner,
        actor_username="prov",
        channel="web",
        action=AuditEvent.Action.SYNC_VALUES,
        outcome="succeeded",
        target_user_ids=[user],
    )
    execute("DROP TABLE auth.audit_log_entries")
    html = section(page(viewer_client, user), "timeline")
    assert "not available on this project&#x27;s Auth version" in html and "Sync values from auth" in html


def test_load_demo_fills_the_log_with_believable_entries_set_based():
    people = [make_auth_user() for _ in range(3)]
    execute("UPDATE auth.users SET created_at = now() - interval '200 days'")

    code, out = run_command("load_demo", "--auth-events", "400")
    assert code == 0 and "Added 400 auth events" in out

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT payload ->> 'action'),"
            " bool_and(e.created_at BETWEEN u.created_at AND now()),"
            " count(*) FILTER (WHERE payload ->> 'actor_username' = 'service_role')"
            " FROM auth.audit_log_entries e JOIN auth.users u"
            " ON u.id::text IN (payload ->> 'actor_id', payload -> 'traits' ->> 'user_id')"
        )
        entries, actions, in_time, by_admin = cursor.fetchone()
    assert entries == 400 and actions == 9 and in_time and by_admin == 4
    assert {user for _, user in reference()} == set(people)
    assert "none added" in run_command("load_demo", "--auth-events", "400")[1]  # idempotent
    event_index.catch_up()
    assert indexed() == reference()


def test_the_index_is_kept_and_read_under_the_readme_grants():
    from django.conf import settings

    from provisioning.account.overview import account
    from tests.test_engine_least_privilege import GRANTS, ROLE

    user = make_auth_user()
    add_event(user, "login", traits={"provider": "google"})
    execute(
        GRANTS + f"GRANT SELECT, INSERT, UPDATE, DELETE ON {settings.DJANGO_SCHEMA}.provisioning_autheventindex,"
        f" {settings.DJANGO_SCHEMA}.provisioning_autheventindexstate TO {ROLE};"  # what the default privileges give
    )
    execute(f"SET LOCAL ROLE {ROLE}")
    done = event_index.catch_up()
    seen = account(user).timeline
    execute("RESET ROLE")
    assert done.built and indexed() == reference()
    assert [e.words for e in seen.entries] == ["signed in with Google"] and seen.as_of is not None
