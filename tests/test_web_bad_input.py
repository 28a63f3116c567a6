"""Bad input everywhere it enters: a clear message or 404, never a 500, nothing written.

Pages come from walking the URLconf (tests.test_web_security.every_page); the search box and
the CLI's arguments are also driven by hypothesis."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.management.base import CommandError
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from provisioning.management.commands.provision import Command as ProvisionCommand
from provisioning.models import AuditEvent
from provisioning.spec import TABLE_NAMES
from tests.factories import make_auth_user
from tests.processes import current_database_url, manage_env
from tests.test_web_security import ids, pages, table_counts  # noqa: F401 - fixtures and helpers

pytestmark = pytest.mark.django_db

BASE_DIR = Path(django_settings.BASE_DIR)

ODD_STRINGS = [
    "%",
    "_",
    "%%__%%",
    "\\",
    "'",
    '"',
    "' OR '1'='1",
    "'; DROP TABLE auth.users; --",
    "a\x00b",
    "\x00",
    "x" * 10_000,
    "é😀\u202e",
    "   ",
    "<script>alert(1)</script>",
    "{{ 7*7 }}",
    "../../etc/passwd",
    "00000000-0000-0000-0000-000000000000",
]
MALFORMED_IDS = [
    "not-a-uuid",
    "-1",
    "0",
    "99999999999999999999999",
    "1e10",
    "' OR 1=1 --",
    "%00",
    "x" * 10_000,
    str(uuid.uuid4()),  # well formed, no such user
    "12345678-1234-1234-1234-1234567890123",
]
#: Per changelist: values for its own filters that no lookup offers, and params it has not.
ODD_QUERIES = [
    {"status": "bogus"},
    {"kind": "bogus"},
    {"action": "bogus"},
    {"outcome": "' OR 1=1"},
    {"channel": "%"},
    {"actor": "\x00"},
    {"actor": "x" * 10_000},
    {"no_such_param": "1"},
    {"o": "99"},
    {"o": "abc.-.x"},
    {"p": "999999"},
    {"p": "-1"},
    {"p": "abc"},
    {"created_at__year": "9999"},
    {"created_at__year": "99999"},
    {"created_at__year": "2026", "created_at__month": "13"},
    {"created_at__gte": "not-a-date"},
    {"date_joined__year": "99999"},
    {"last_login__year": "0"},
    {"attempt_time__year": "99999"},
    {"id": "99999999999999999999"},
    {"id__in": "99999999999999999999"},
    {"id__gt": "1e400"},
    {"created_at__gte": "2026-02-30"},
    {"id__in": "1,2,'x"},
    {"_facets": "1"},
    {"all": ""},
    {"e": "1"},
]


@pytest.fixture
def superuser_client(client, django_user_model):
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-1")
    client.force_login(boss)
    return client


def changelists(all_pages) -> list[str]:
    return sorted({p.path for p in all_pages if p.name.endswith("_changelist")})


def assert_handled(response, what) -> None:
    assert response.status_code != 500, what
    assert response.status_code in {200, 302, 400, 403, 404, 405}, (what, response.status_code)


# --- search strings, filter values, unknown params ---------------------------------------


def test_odd_search_strings_on_every_list_never_fail(superuser_client, pages):  # noqa: F811
    make_auth_user(email="percent%under_score@example.com")
    before = table_counts()
    for path in changelists(pages):
        for term in ODD_STRINGS:
            response = superuser_client.get(path, {"q": term})
            assert_handled(response, (path, term[:40]))
    assert table_counts() == before


def test_unknown_filter_values_and_params_on_every_list_never_fail(superuser_client, pages):  # noqa: F811
    before = table_counts()
    for path in changelists(pages):
        for query in ODD_QUERIES:
            response = superuser_client.get(path, query)
            assert_handled(response, (path, query))
            if response.status_code == 302:
                assert "e=1" in response["Location"] or "login" in response["Location"], (path, query)
    assert table_counts() == before


def test_unknown_filter_value_shows_the_unfiltered_list(provisioner_client):
    make_auth_user(keep=())
    response = provisioner_client.get(reverse("admin:provisioning_authuser_changelist"), {"status": "bogus"})

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) >= 1


def test_search_with_sql_wildcards_matches_them_literally(provisioner_client):
    literal = make_auth_user(email="percent%under_score@example.com")
    other = make_auth_user(email="percentXunderYscore@example.com")

    response = provisioner_client.get(reverse("admin:provisioning_authuser_changelist"), {"q": "percent%under_"})

    shown = {u.pk for u in response.context["cl"].result_list}
    assert literal in shown and other not in shown


# --- malformed ids and users that do not exist -------------------------------------------


def test_malformed_or_unknown_ids_in_every_url_give_404_not_500(provisioner_client, pages):  # noqa: F811
    make_auth_user(keep=())
    before = table_counts()
    with_ids = [p for p in pages if "/bogus-id/" in p.path]
    assert with_ids, "the walk found no URL that takes an id"
    for page in with_ids:
        for bad in MALFORMED_IDS:
            path = page.path.replace("/bogus-id/", f"/{quote(bad, safe='')}/", 1)
            get = provisioner_client.get(path)
            post = provisioner_client.post(path)
            assert_handled(get, path[:120])
            assert_handled(post, path[:120])
    assert table_counts() == before


def test_provisioning_a_user_that_does_not_exist_is_a_404(provisioner_client):
    before = table_counts()

    response = provisioner_client.post(reverse("admin:provisioning_authuser_provision", args=[uuid.uuid4()]))

    assert response.status_code == 404
    assert table_counts() == before


def test_audit_event_ids_out_of_range_are_a_404(viewer_client):
    for bad in ("99999999999999999999", "9223372036854775808", "-5", "abc"):
        response = viewer_client.get(f"/admin/provisioning/auditevent/{bad}/change/")
        assert response.status_code in {302, 404}, bad


# --- property-based: the search box and ids in URLs --------------------------------------

SEARCH_TEXT = st.one_of(
    st.text(max_size=300),
    st.sampled_from(ODD_STRINGS),
    st.text(alphabet="%_\\'\"\x00;-*()[]", max_size=50),
    st.uuids().map(str),
)
PROPERTY = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(term=SEARCH_TEXT)
def test_search_box_never_fails_whatever_is_typed(provisioner_client, term):
    before = AuditEvent.objects.count()
    for name in ("provisioning_authuser", "provisioning_auditevent", "provisioning_appuser", "provisioning_profile"):
        response = provisioner_client.get(reverse(f"admin:{name}_changelist"), {"q": term})
        assert_handled(response, (name, term[:40]))
        assert response.status_code == 200
    assert AuditEvent.objects.count() == before


@PROPERTY
@given(object_id=st.one_of(st.text(min_size=1, max_size=100), st.uuids().map(str)))
def test_any_id_in_a_detail_url_is_a_page_or_a_404(provisioner_client, object_id):
    for name in ("provisioning_authuser_change", "provisioning_auditevent_change", "provisioning_authuser_history"):
        path = reverse(f"admin:{name}", args=["ID"]).replace("ID", quote(object_id, safe=""))
        assert_handled(provisioner_client.get(path), (name, object_id))


# --- the CLI -----------------------------------------------------------------------------


def run_provision(args: list[str]) -> int:
    """`manage.py provision ARGS` in this process, as the shell runs it (argparse errors
    exit 2, CommandError exits with its returncode), without closing the test's database
    connection as `run_from_argv` does. Returns the exit code."""
    command = ProvisionCommand()
    command._called_from_command_line = True
    parser = command.create_parser("manage.py", "provision")
    try:
        options = parser.parse_args(args)
        command.execute(*options.args if hasattr(options, "args") else (), **vars(options))
    except CommandError as exc:
        return exc.returncode
    except SystemExit as exc:
        return exc.code
    return 0


CLI_TEXT = st.one_of(st.text(max_size=60), st.uuids().map(str), st.sampled_from(ODD_STRINGS))


@PROPERTY
@given(
    users=st.lists(CLI_TEXT, min_size=1, max_size=3),
    tables=st.lists(st.one_of(st.sampled_from(TABLE_NAMES), CLI_TEXT), max_size=3),
    batch_size=st.one_of(st.none(), st.integers(-3, 3), st.sampled_from(["abc", "", "1e3", "-0"])),
    dry_run=st.booleans(),
)
def test_cli_arguments_never_raise_anything_but_exit_2(users, tables, batch_size, dry_run):
    make_auth_user(keep=())  # someone real to write for, were the input ever accepted
    before = table_counts()
    args = [*(x for u in users for x in ("--user", u)), *(x for t in tables for x in ("--table", t))]
    if batch_size is not None:
        args += ["--batch-size", str(batch_size)]
    if dry_run:
        args.append("--dry-run")

    code = run_provision(args)

    assert code == 2, args
    assert table_counts() == before


@pytest.mark.parametrize(
    "args",
    [
        ["--table", "bogus", "--all-missing"],
        ["--user", "nobody@example.com"],
        ["--user", str(uuid.uuid4())],
        ["--user", "not-a-uuid-or-email"],
        ["--all-missing", "--batch-size", "0"],
        ["--all-missing", "--user", "x"],
        [],
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line_and_no_traceback(args):
    result = subprocess.run(
        [sys.executable, "manage.py", "provision", *args],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env=manage_env(database_url=current_database_url()),
    )

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()
