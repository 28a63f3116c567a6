""" "Provision all missing" when the spec fills unique columns besides the key (issue 24,
section 3): the insert lets the unique indexes find the collisions (`ON CONFLICT DO
NOTHING RETURNING`), and only the users it left are explained, each with the owner of the
row holding their value. Here the spec also copies a `username` from the sign-up metadata
into public.users and public.profiles, where it is unique."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from django.db import connection
from psycopg import sql

from provisioning.engine import ledger, services, statements
from provisioning.engine import plans as plans_module
from provisioning.models import AuditEvent, LedgerEntry
from provisioning.spec import AuthMetadata
from tests.factories import count, disable_trigger, execute, make_auth_user

pytestmark = pytest.mark.django_db

TABLES = ("users", "profiles", "wallets")
USERS_TAKEN = "username already used by another public.users row (users_username_key)"
PROFILES_TAKEN = "username already used by another public.profiles row (profiles_username_key)"
SHARED = "username shared with an earlier user of this run, who has or gets the row"


@pytest.fixture
def username_spec(monkeypatch):
    """The default spec, plus username = raw_user_meta_data->>'username' in users and profiles."""
    from provisioning import spec as spec_module

    specs = tuple(
        dataclasses.replace(s, values={**s.values, "username": AuthMetadata("username")})
        if s.name in ("users", "profiles")
        else s
        for s in spec_module.SPEC
    )
    for module in (spec_module, services, ledger):
        monkeypatch.setattr(module, "SPEC", specs)
    return specs


def person(username: str, *, keep=(), email: str = "auto", is_sso_user: bool = False) -> uuid.UUID:
    return make_auth_user(email, meta={"username": username}, keep=keep, is_sso_user=is_sso_user)


def holding(username: str) -> uuid.UUID:
    """A provisioned user whose app user and profile hold `username`."""
    user_id = person(username, keep=TABLES)
    execute("UPDATE public.users SET username = %s WHERE id = %s", [username, user_id])
    execute("UPDATE public.profiles SET username = %s WHERE user_id = %s", [username, user_id])
    return user_id


def reported(result) -> dict[tuple[uuid.UUID, str], tuple[str, uuid.UUID | None]]:
    return {(n.user_id, n.table): (n.reason, n.held_by) for n in result.not_provisioned}


def test_a_username_another_users_rows_hold_is_reported_naming_that_user_and_the_rest_written(cli_actor, username_spec):
    owner = holding("ada")
    late = person("ada")
    others = [person(f"grace{i}") for i in range(3)]

    result = services.provision_all_missing(actor=cli_actor, batch_size=50)

    assert result.batches == 1
    assert reported(result) == {(late, "users"): (USERS_TAKEN, owner), (late, "profiles"): (PROFILES_TAKEN, owner)}
    assert [count(t, others) for t in TABLES] == [3, 3, 3]
    assert [count(t, [late]) for t in TABLES] == [0, 0, 1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT username FROM public.users WHERE id = ANY(%s) ORDER BY username", [others])
        assert [r[0] for r in cursor.fetchall()] == ["grace0", "grace1", "grace2"]
    event = AuditEvent.objects.get(pk=result.audit_event_ids[-1])
    assert event.outcome == AuditEvent.Outcome.PARTIAL
    assert {(n["user_id"], n["table"], n["held_by"]) for n in event.not_provisioned} == {
        (str(late), "users", str(owner)),
        (str(late), "profiles", str(owner)),
    }


def test_two_users_of_one_run_sharing_a_username_the_first_by_id_gets_it_and_a_dry_run_says_so(
    cli_actor, username_spec
):
    first, second = sorted([person("linus"), person("linus")])
    others = [person("margaret"), person("barbara")]

    dry = services.provision_all_missing(actor=cli_actor, dry_run=True)
    real = services.provision_all_missing(actor=cli_actor)

    assert reported(real) == {(second, "users"): (SHARED, first), (second, "profiles"): (SHARED, first)}
    assert [n.as_dict() for n in dry.not_provisioned] == [n.as_dict() for n in real.not_provisioned]
    assert dry.created == real.created == {"users": 3, "profiles": 3, "wallets": 4}
    assert [count(t, [first, *others]) for t in TABLES] == [3, 3, 3]
    assert [count(t, [second]) for t in TABLES] == [0, 0, 1]


def test_the_earlier_user_written_in_an_earlier_batch_holds_the_value_for_the_later_one(cli_actor, username_spec):
    first, second = sorted([person("edsger"), person("edsger")])

    result = services.provision_all_missing(actor=cli_actor, batch_size=1)

    assert result.batches == 2
    assert reported(result) == {(second, "users"): (USERS_TAKEN, first), (second, "profiles"): (PROFILES_TAKEN, first)}


def test_a_row_the_database_rejects_and_a_collision_in_one_batch_are_both_reported_and_the_rest_written(
    cli_actor, username_spec
):
    owner = holding("ada")
    late = person("ada")
    rejected = person("bad-wallet")
    others = [person(f"alan{i}") for i in range(3)]
    execute(
        "ALTER TABLE public.wallets ADD CONSTRAINT no_bad_wallet CHECK (user_id <> %s::uuid) NOT VALID", [str(rejected)]
    )

    result = services.provision_all_missing(actor=cli_actor)

    found = reported(result)
    assert found.pop((late, "users")) == (USERS_TAKEN, owner)
    assert found.pop((late, "profiles")) == (PROFILES_TAKEN, owner)
    ((where, (reason, held_by)),) = found.items()
    assert where == (rejected, "wallets") and "no_bad_wallet" in reason and held_by is None
    assert [count(t, others) for t in TABLES] == [3, 3, 3]
    assert [count(t, [rejected]) for t in TABLES] == [1, 1, 0]
    assert count("wallets", [late]) == 1


def _ranked_reasons(plan, ids) -> list[tuple[uuid.UUID, str | None]]:
    """The reasons as every peer ranked by id gives them (`block_reason` without `written`),
    the peers being `ids` and the users the batch wrote: what the range batch asked before."""
    peers = sql.SQL("(p.id = ANY(%(ids)s) OR p.id IN (SELECT w.id FROM {} w WHERE w.tbl = {}))").format(
        statements.WRITTEN, sql.Literal(plan.name)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT u.id, {} FROM {} u WHERE u.id = ANY(%(ids)s) AND {} ORDER BY u.id").format(
                statements.block_reason(plan, peers), statements.AUTH_USERS, statements.missing(plan)
            ),
            {"ids": ids},
        )
        return cursor.fetchall()


def test_the_probed_reasons_equal_the_reasons_of_ranking_every_peer(cli_actor, username_spec):
    owner = holding("ada")
    disable_trigger()  # twins sharing an email: the sign-up trigger would refuse the second
    # Lowest id first: `a` is refused its username (an existing row holds it); `b`, later by
    # id, shares a's email (an SSO twin) and gets the app user, so the email a lacks is then
    # held by a later user of the run: "already used", not "shared with an earlier user".
    # `f` is refused "ada" too: an earlier user of the run (`a`) shares it, though neither gets it.
    a, b, c, d, e, f = sorted(uuid.uuid4() for _ in range(6))
    for user_id, email, username, sso in (
        (a, "twin@example.com", "ada", False),
        (b, "twin@example.com", "b-name", True),
        (c, "c@example.com", "shared", False),
        (d, "d@example.com", "shared", False),
        (e, None, "ada", False),  # phone-only: no email for public.users
        (f, "f@example.com", "ada", False),
    ):
        execute(
            "INSERT INTO auth.users (id, aud, role, email, phone, is_sso_user, raw_user_meta_data, created_at, "
            "updated_at) VALUES (%s, 'authenticated', 'authenticated', %s, %s, %s, "
            "jsonb_build_object('username', %s::text), now(), now())",
            [user_id, email, None if email else f"1555{user_id.int % 10**7}", sso, username],
        )

    result = services.provision_all_missing(actor=cli_actor)

    # The run is inside the test's transaction: its temporary table of written ids is still there.
    plan = next(p for p in plans_module.plan_run(username_spec, list(TABLES)) if p.name == "users")
    left = [u for u in (a, b, c, d, e, f) if count("users", [u]) == 0]
    assert left == [a, d, e, f]
    with connection.cursor() as cursor:
        cursor.execute(statements.left_after_insert(plan), {"ids": left})
        probed = [(u, r) for u, r, *_ in cursor.fetchall()]
    assert probed == _ranked_reasons(plan, left)
    assert reported(result)[(a, "users")] == (
        "email already used by another public.users row (users_email_key)",
        b,
    )
    assert reported(result)[(d, "users")] == (SHARED, c)
    assert reported(result)[(f, "users")] == (SHARED, owner)
    assert reported(result)[(e, "users")][1] is None and "no email" in reported(result)[(e, "users")][0]
    assert owner not in {n.user_id for n in result.not_provisioned}


def ledger_entries() -> dict:
    return {e.user_id: (sorted(e.tables), e.reasons) for e in LedgerEntry.objects.all()}


@pytest.mark.parametrize("tables", [None, ["users", "profiles"]], ids=["every-table", "some-tables"])
def test_after_a_bulk_run_with_collisions_the_ledger_equals_a_rebuild(cli_actor, username_spec, tables):
    holding("ada")
    late, twin = sorted([person("ada"), person("ada")])
    first, second = sorted([person("linus"), person("linus")])
    others = [person(f"grace{i}") for i in range(4)]
    person("wallet-only", keep=("users", "profiles"))
    ledger.rebuild()
    assert {late, twin, first, second, *others} <= set(ledger_entries())

    services.provision_all_missing(actor=cli_actor, tables=tables, batch_size=3)

    kept = ledger_entries()
    ledger.rebuild()
    assert kept == ledger_entries()
    assert not set(others) & set(kept) if tables is None else set(others) <= set(kept)
    assert {late, twin, second} <= set(kept)
