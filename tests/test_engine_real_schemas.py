"""Provisioning on the schemas real Supabase apps have: foreign keys between app tables, a
NOT NULL column nobody fills, and rows the database rejects one by one (a CHECK, a trigger
that raises, a varchar too short). Each time: the dry run says exactly what the real run
then writes, the right users are blocked with the right reasons, no row is written twice,
and the audit events list exactly what was written."""

from __future__ import annotations

import pytest

from provisioning.engine import selectors, services
from provisioning.engine.plans import SpecCycle
from provisioning.models import AuditEvent
from tests.factories import count, disable_trigger, execute, make_auth_user, make_chained_shape, run_command

pytestmark = pytest.mark.django_db

TABLES = ("users", "profiles", "wallets")
PASSWORD = "public.users.password is NOT NULL with no default and the spec does not fill it"


def outcome(result) -> tuple[dict, set]:
    """What a run wrote (or would write) per table, and who it could not provision and why."""
    written = {t: set(result.created_sample.get(t, [])) for t in TABLES}
    refused = {(n.user_id, n.table, n.reason) for n in result.not_provisioned}
    return written, refused


def dry_then_real(actor, user_ids):
    dry = services.provision_users(actor=actor, user_ids=user_ids, dry_run=True)
    assert sum(count(t, user_ids) for t in TABLES) == sum(count(t, user_ids) for t in TABLES)  # nothing yet
    before = {t: count(t, user_ids) for t in TABLES}
    real = services.provision_users(actor=actor, user_ids=user_ids)
    assert outcome(dry) == outcome(real), "the dry run must predict the real run row for row"
    assert {t: count(t, user_ids) - before[t] for t in TABLES} == {t: len(ids) for t, ids in outcome(real)[0].items()}
    return real


def audited_rows(result) -> dict[str, set]:
    events = AuditEvent.objects.filter(pk__in=result.audit_event_ids)
    rows: dict[str, set] = {t: set() for t in TABLES}
    for event in events:
        for table, ids in event.rows_created.items():
            rows[table] |= {str(i) for i in ids}
    return rows


def test_chained_shape_writes_parents_first_and_blocks_children_of_an_unwritable_parent(cli_actor):
    has_app_user = make_auth_user(keep=("users",))
    has_nothing = make_auth_user(keep=())
    complete = make_auth_user()
    make_chained_shape()
    users = [has_app_user, has_nothing, complete]

    result = dry_then_real(cli_actor, users)

    written, refused = outcome(result)
    assert written == {"users": set(), "profiles": {has_app_user}, "wallets": {has_app_user}}
    chain = f"needs its public.users row, which cannot be written ({PASSWORD})"
    assert refused == {
        (has_nothing, "users", PASSWORD),
        (has_nothing, "profiles", chain),
        (has_nothing, "wallets", chain),
    }
    assert [count(t, [has_nothing]) for t in TABLES] == [0, 0, 0]
    assert [count(t, [has_app_user]) for t in TABLES] == [1, 1, 1]
    assert audited_rows(result) == {"users": set(), "profiles": {str(has_app_user)}, "wallets": {str(has_app_user)}}


def test_chained_shape_status_counts_and_cannot_provision_lists_name_the_chain(cli_actor):
    make_auth_user(keep=("users",))
    blocked_user = make_auth_user(keep=())
    make_chained_shape()

    reasons, sample = selectors.cannot_provision(sample=10)

    chain = f"needs its public.users row, which cannot be written ({PASSWORD})"
    assert reasons == {f"users: {PASSWORD}": 1, f"profiles: {chain}": 1, f"wallets: {chain}": 1}
    assert {item["user_id"] for item in sample} == {str(blocked_user)}


def test_a_run_of_the_child_table_alone_does_not_promise_rows_whose_parent_is_missing(cli_actor):
    has_app_user = make_auth_user(keep=("users",))
    has_nothing = make_auth_user(keep=())
    make_chained_shape()

    dry = services.provision_all_missing(actor=cli_actor, tables=["wallets"], dry_run=True)
    real = services.provision_all_missing(actor=cli_actor, tables=["wallets"])

    assert outcome(dry) == outcome(real)
    assert outcome(real)[0]["wallets"] == {has_app_user}
    assert outcome(real)[1] == {(has_nothing, "wallets", "needs its public.users row, which this run does not write")}


def test_provision_all_missing_on_the_chained_shape_exits_1_naming_the_password_and_the_chain():
    make_auth_user(keep=("users",))
    make_auth_user(keep=())
    make_chained_shape()

    code, out = run_command("provision", "--all-missing")

    assert code == 1
    assert PASSWORD in out and "needs its public.users row, which cannot be written" in out
    assert "Created a profile and a wallet for 2 users." in out


def test_a_check_constraint_rejects_only_its_rows_and_the_dry_run_knows(cli_actor):
    ok = make_auth_user("fine@example.com", keep=())
    rejected = make_auth_user("someone@blocked.example", keep=())
    execute("ALTER TABLE public.users ADD CONSTRAINT no_blocked_domain CHECK (email NOT LIKE '%%@blocked.example')")

    result = dry_then_real(cli_actor, [ok, rejected])

    written, refused = outcome(result)
    assert written == {"users": {ok}, "profiles": {ok, rejected}, "wallets": {ok, rejected}}
    ((user, table, reason),) = refused
    assert (user, table) == (rejected, "users")
    assert "no_blocked_domain" in reason and reason.endswith("(SQLSTATE 23514)")
    assert AuditEvent.objects.get(pk=result.audit_event_ids[0]).outcome == AuditEvent.Outcome.PARTIAL


def test_a_trigger_that_raises_for_some_profiles_sinks_only_those(cli_actor):
    users = [make_auth_user(keep=("users", "wallets")) for _ in range(7)]
    refused_ids = users[2], users[5]
    execute(
        "CREATE TABLE public.refused (user_id uuid PRIMARY KEY);"
        "CREATE FUNCTION public.refuse_some() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM public.refused r WHERE r.user_id = NEW.user_id) THEN "
        "RAISE EXCEPTION 'profile refused for %', NEW.user_id; END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER refuse_some BEFORE INSERT ON public.profiles FOR EACH ROW EXECUTE FUNCTION public.refuse_some()"
    )
    execute("INSERT INTO public.refused VALUES (%s), (%s)", list(refused_ids))

    result = dry_then_real(cli_actor, users)

    written, refused = outcome(result)
    assert written["profiles"] == set(users) - set(refused_ids)
    assert {(u, t) for u, t, _ in refused} == {(u, "profiles") for u in refused_ids}
    assert all("profile refused for" in r and r.endswith("(SQLSTATE P0001)") for _, _, r in refused)
    assert count("profiles", users) == 5  # no duplicates after the retries


def test_a_value_too_long_for_its_column_is_isolated_and_a_chained_child_is_not_attempted(cli_actor):
    disable_trigger()
    short = make_auth_user("a@x.io", keep=())
    long = make_auth_user("a-rather-long-address@example.com", keep=())
    execute("ALTER TABLE public.users ALTER COLUMN email TYPE varchar(20)")
    make_chained_shape()
    execute("ALTER TABLE public.users ALTER COLUMN password SET DEFAULT 'unusable'")

    result = dry_then_real(cli_actor, [short, long])

    written, refused = outcome(result)
    assert written == {"users": {short}, "profiles": {short}, "wallets": {short}}
    reasons = {(t, r.split(" (")[0]) for u, t, r in refused if u == long}
    assert ("users", "value too long for type character varying(20)") in reasons
    assert {t for t, _ in reasons} == {"users", "profiles", "wallets"}
    assert all("could not be written (value too long" in r for u, t, r in refused if t != "users")


def test_tables_whose_foreign_keys_form_a_cycle_are_refused_before_anything_is_written(cli_actor):
    user_id = make_auth_user(keep=())
    execute(
        "ALTER TABLE public.profiles ADD CONSTRAINT profiles_user_fk "
        "FOREIGN KEY (user_id) REFERENCES public.users (id);"
        "ALTER TABLE public.users ADD CONSTRAINT users_profile_fk "
        "FOREIGN KEY (id) REFERENCES public.profiles (user_id)"
    )

    with pytest.raises(SpecCycle, match="cycle"):
        services.provision_users(actor=cli_actor, user_ids=[user_id])
    code, message = run_command("provision", "--all-missing")

    assert code == 2 and "cycle" in message
    assert "public.users -> public.profiles" in message or "public.profiles -> public.users" in message
    assert [count(t, [user_id]) for t in TABLES] == [0, 0, 0]


@pytest.mark.parametrize("batch_size", [2, None])
def test_all_missing_writes_id_ranges_and_still_isolates_each_rejected_row(cli_actor, batch_size):
    """ "Provision all missing" writes each batch as one statement per table over an id
    range; a row the database rejects (a CHECK, a trigger) falls back to per-row isolation,
    and the dry run still predicts the real run row for row."""
    users = sorted(make_auth_user(keep=("wallets",)) for _ in range(6))
    blocked = make_auth_user("someone@blocked.example", keep=())
    refused = users[2]
    execute("ALTER TABLE public.users ADD CONSTRAINT no_blocked_domain CHECK (email NOT LIKE '%%@blocked.example')")
    execute(
        "CREATE FUNCTION public.refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.user_id = '{refused}' THEN RAISE EXCEPTION 'profile refused'; END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER refuse_one BEFORE INSERT ON public.profiles FOR EACH ROW EXECUTE FUNCTION public.refuse_one()"
    )

    dry = services.provision_all_missing(actor=cli_actor, dry_run=True, batch_size=batch_size)
    real = services.provision_all_missing(actor=cli_actor, batch_size=batch_size)

    assert outcome(dry) == outcome(real)
    everyone = {*users, blocked}
    written, refusals = outcome(real)
    assert written == {"users": set(users), "profiles": everyone - {refused}, "wallets": {blocked}}
    assert {(u, t) for u, t, _ in refusals} == {(blocked, "users"), (refused, "profiles")}
    assert audited_rows(real) == {t: {str(u) for u in ids} for t, ids in written.items()}
    assert count("profiles", list(everyone)) == 6 and count("users", list(everyone)) == 6
