"""The provisioning ledger: who lacks which rows, kept so that counts never scan auth.users.

One `LedgerEntry` per live auth user lacking a row in some spec table (users lacking nothing
have none), with the tables and, per table they cannot get, the reason; one `LedgerState`
row with the watermark (the newest sign-up seen), when it was rebuilt and caught up, and the
fingerprint of the SQL that built it. The drift scan (provisioning/drift/) is the pattern:
scan once, then keep the result in step.

How it stays in step (docs/performance.md, "The provisioning ledger"):
- `rebuild`: one set-based INSERT ... SELECT, the hash joins of `statements.status_counts`.
- `refresh_users`: the dashboard's own writes (every provisioning batch) recompute their
  users' entries in the batch's own transaction.
- `catch_up` (the worker, every minute): re-checks every entry live (the app may have
  written the rows itself) and the sign-ups since the watermark; rebuilds instead when the
  spec or schema changed, when an app table lost rows (pg_stat counters), or when the last
  rebuild is older than LEDGER_REBUILD_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from provisioning.engine import plans as plans_module
from provisioning.engine import statements
from provisioning.engine.plans import TablePlan
from provisioning.models import LedgerEntry, LedgerState
from provisioning.spec import SPEC

LEDGER = sql.Identifier(LedgerEntry._meta.db_table)
#: Sign-ups are re-read from this long before the watermark: a sign-up's transaction may
#: commit after a later one (created_at is its start), and re-reading is idempotent.
OVERLAP = dt.timedelta(minutes=5)
CANDIDATES = sql.Identifier("pg_temp", "eloity_ledger_candidates")
REFRESHED = sql.Identifier("pg_temp", "eloity_ledger_refreshed")


def _rebuild_seconds() -> int:
    return int(getattr(settings, "LEDGER_REBUILD_SECONDS", 3600))


def _flag(index: int) -> sql.Identifier:
    return sql.Identifier(f"eloity_m{index}")


def _columns(plans: list[TablePlan]) -> list[str]:
    columns = ["id", "created_at"]
    for plan in plans:
        columns += [c for c in statements._auth_columns(plan) if c not in columns]
    return columns


def entries(plans: list[TablePlan], among: sql.Composable, keep: sql.Composable) -> sql.Composed:
    """INSERT the ledger entries of the population users matching `among` (a condition on
    auth user `u`; the peers a unique value is ranked among) who lack a row somewhere, for
    those matching `keep` too. Flags come from one LEFT JOIN per table (a hash join over
    everyone, index probes over a few); each reason is `statements.block_reason` with the
    users lacking that table as the peers, as `statements.blocked_summary` computes it."""
    aliases = [f"t{i}" for i in range(len(plans))]
    flags = [sql.SQL("{}.k IS NULL").format(sql.Identifier(a)) for a in aliases]
    names = [sql.Literal(plan.name) for plan in plans]
    missing_cte = sql.SQL(
        "SELECT {columns}, {flags} FROM {auth} u {joins} WHERE {population} AND ({among}) AND ({any})"
    ).format(
        columns=sql.SQL(", ").join(sql.SQL("u.{}").format(sql.Identifier(c)) for c in _columns(plans)),
        flags=sql.SQL(", ").join(sql.SQL("{} AS {}").format(f, _flag(i)) for i, f in enumerate(flags)),
        auth=statements.AUTH_USERS,
        joins=sql.SQL(" ").join(statements._joined(p, a) for p, a in zip(plans, aliases, strict=True)),
        population=statements.POPULATION,
        among=among,
        any=sql.SQL(" OR ").join(flags),
    )
    reasons = sql.SQL(", ").join(
        sql.SQL("{name}, CASE WHEN u.{flag} THEN ({reason}) END").format(
            name=name,
            flag=_flag(i),
            reason=statements.block_reason(plan, sql.SQL("p.{}").format(_flag(i)), sql.Identifier("missing")),
        )
        for i, (plan, name) in enumerate(zip(plans, names, strict=True))
    )
    return sql.SQL(
        "INSERT INTO {ledger} (user_id, created_at, tables, reasons) "
        "WITH missing AS MATERIALIZED ({missing}) "
        "SELECT u.id, u.created_at, array_remove(ARRAY[{tables}]::varchar[], NULL), "
        "jsonb_strip_nulls(jsonb_build_object({reasons})) FROM missing u WHERE {keep}"
    ).format(
        ledger=LEDGER,
        missing=missing_cte,
        tables=sql.SQL(", ").join(
            sql.SQL("CASE WHEN u.{} THEN {} END").format(_flag(i), name) for i, name in enumerate(names)
        ),
        reasons=reasons,
        keep=keep,
    )


def fingerprint(plans: list[TablePlan]) -> str:
    """A hash of the rebuild statement: the spec and the live schema it was planned on."""
    text = statements.as_text(entries(plans, sql.SQL("TRUE"), sql.SQL("TRUE")))
    return hashlib.sha256(text.encode()).hexdigest()


def _table_changes(plans: list[TablePlan]) -> dict[str, int]:
    """Rows deleted so far from each spec table (pg_stat counters: the shared ones, plus
    this transaction's own, which are not flushed yet)."""
    names = [plan.spec.qualified_name for plan in plans if plan.keyed and not plan.table_problem]
    if not names:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT s.schemaname || '.' || s.relname, s.n_tup_del + COALESCE(x.n_tup_del, 0) "
            "FROM pg_stat_user_tables s LEFT JOIN pg_stat_xact_user_tables x ON x.relid = s.relid "
            "WHERE s.schemaname || '.' || s.relname = ANY(%s)",
            [names],
        )
        return dict(cursor.fetchall())


def _live_users() -> int:
    """Live, non-anonymous sign-ups: a count of auth.users alone (no join), kept in the state
    so that reads never scan auth.users."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT count(*) FROM {} u WHERE {}").format(statements.AUTH_USERS, statements.POPULATION)
        )
        return cursor.fetchone()[0]


def _watermark() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT u.created_at, u.id FROM {} u WHERE u.created_at IS NOT NULL ORDER BY 1 DESC, 2 DESC LIMIT 1"
            ).format(statements.AUTH_USERS)
        )
        row = cursor.fetchone()
    return row if row else (None, None)


@transaction.atomic
def rebuild(*, plans: list[TablePlan] | None = None) -> LedgerState:
    """Recompute every entry in one set-based pass (transactional: readers see the old
    ledger until it commits). Returns the new state."""
    plans = plans or plans_module.plan_tables(SPEC)
    started = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(LEDGER))
        cursor.execute(sql.SQL("DELETE FROM {}").format(LEDGER))
        cursor.execute(entries(plans, sql.SQL("TRUE"), sql.SQL("TRUE")))
    created_at, user_id = _watermark()
    state, _ = LedgerState.objects.update_or_create(
        pk=1,
        defaults={
            "fingerprint": fingerprint(plans),
            "rebuilt_at": started,
            "caught_up_at": started,
            "watermark_created_at": created_at,
            "watermark_id": user_id,
            "table_changes": _table_changes(plans),
            "live_users": _live_users(),
        },
    )
    return state


def refresh_users(
    ids_condition: sql.Composable,
    params: dict | None = None,
    *,
    plans=None,
    may_lack: sql.Composable | None = None,
) -> None:
    """Recompute the entries of the users matching `ids_condition` (a condition on auth
    user `u`), live, in the caller's transaction: the dashboard's own writes call it with
    the users they wrote. Nothing happens while there is no ledger yet (the worker builds
    it). The users are ranked for unique values among the others still in the ledger who
    share a value with them.

    `may_lack` (a subquery of auth user ids): of those users, the only ones who may still
    lack a row (a bulk batch knows whom it wrote everything): the others' entries are
    only deleted, so a batch recomputes its few users left, not its whole batch."""
    if not LedgerState.objects.filter(pk=1).exists():
        return
    plans = plans or plans_module.plan_tables(SPEC)
    with connection.cursor() as cursor:
        # The users first, kept aside: the condition may read the ledger itself.
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(REFRESHED))
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE eloity_ledger_refreshed ON COMMIT DROP AS SELECT u.id FROM {auth} u WHERE {ids}"
            ).format(auth=statements.AUTH_USERS, ids=ids_condition),
            params or {},
        )
        cursor.execute(
            sql.SQL("DELETE FROM {ledger} l WHERE l.user_id IN (SELECT id FROM {refreshed})").format(
                ledger=LEDGER, refreshed=REFRESHED
            )
        )
        if may_lack is not None:
            # A table of its own (not a DELETE from this one): the entries' statement reads
            # it once per user it keeps, and the batch's dead rows would be read each time.
            cursor.execute(
                sql.SQL(
                    "CREATE TEMPORARY TABLE eloity_ledger_left ON COMMIT DROP AS "
                    "SELECT r.id FROM {refreshed} r WHERE r.id IN ({may_lack})"
                ).format(refreshed=REFRESHED, may_lack=may_lack)
            )
            cursor.execute(sql.SQL("DROP TABLE {}").format(REFRESHED))
            cursor.execute("ALTER TABLE pg_temp.eloity_ledger_left RENAME TO eloity_ledger_refreshed")
        cursor.execute(sql.SQL("ANALYZE {}").format(REFRESHED))
        mine = sql.SQL("u.id IN (SELECT id FROM {})").format(REFRESHED)
        among = mine
        uniques = [(plan, blocker) for plan in plans for blocker in plan.blockers if blocker.kind != "null"]
        if uniques:
            # A unique value goes to the first (by id) of the users lacking the row: rank
            # them among the others still in the ledger who share one of their values
            # (the others cannot change their rank; keeping them out keeps this the size of
            # the users refreshed, not of the ledger).
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(AMONG))
            cursor.execute(
                sql.SQL(
                    "CREATE TEMPORARY TABLE eloity_ledger_among ON COMMIT DROP AS SELECT id FROM {refreshed} "
                    "UNION SELECT p.id FROM {ledger} l JOIN {auth} p ON p.id = l.user_id WHERE {shared}"
                ).format(
                    refreshed=REFRESHED,
                    ledger=LEDGER,
                    auth=statements.AUTH_USERS,
                    shared=sql.SQL(" OR ").join(_shares_a_value(plan, blocker) for plan, blocker in uniques),
                )
            )
            cursor.execute(sql.SQL("ANALYZE {}").format(AMONG))
            among = sql.SQL("u.id IN (SELECT id FROM {})").format(AMONG)
        cursor.execute(entries(plans, among, mine))


AMONG = sql.Identifier("pg_temp", "eloity_ledger_among")


def _shares_a_value(plan: TablePlan, blocker) -> sql.Composed:
    """True when auth user `p` would write the same value to the blocker's unique columns
    as one of the users refreshed."""
    values = [plan.columns[c] for c in blocker.columns]
    return sql.SQL("({p}) IN (SELECT {q} FROM {auth} q WHERE q.id IN (SELECT id FROM {refreshed}))").format(
        p=sql.SQL(", ").join(v.expression("p") for v in values),
        q=sql.SQL(", ").join(v.expression("q") for v in values),
        auth=statements.AUTH_USERS,
        refreshed=REFRESHED,
    )


def refresh_blocked() -> None:
    """Recompute the entries of users who cannot get a row (few), in the caller's
    transaction: after a write that may free or take a unique value they wait for (values
    synced, orphaned rows removed)."""
    refresh_users(sql.SQL("u.id IN (SELECT b.user_id FROM {} b WHERE NOT (b.reasons = '{{}}'::jsonb))").format(LEDGER))


@dataclass(frozen=True)
class CatchUp:
    rebuilt: bool
    why: str
    checked: int
    entries: int
    state: LedgerState


@transaction.atomic
def catch_up() -> CatchUp:
    """Bring the ledger up to date: rebuild it when there is none, the spec or schema
    changed, an app table lost rows since the last check, or the last rebuild is older than
    LEDGER_REBUILD_SECONDS; otherwise re-check every entry and every sign-up since the
    watermark (less `OVERLAP`), live. Transactional; returns what it did."""
    plans = plans_module.plan_tables(SPEC)
    state = LedgerState.objects.select_for_update().filter(pk=1).first()
    why = ""
    if state is None:
        why = "no ledger yet"
    elif state.fingerprint != fingerprint(plans):
        why = "the spec or the app tables' schema changed"
    elif timezone.now() - state.rebuilt_at > dt.timedelta(seconds=_rebuild_seconds()):
        why = f"the last rebuild is older than {_rebuild_seconds()} s"
    elif any(n > state.table_changes.get(name, 0) for name, n in _table_changes(plans).items()):
        why = "rows were deleted from an app table"
    if why:
        state = rebuild(plans=plans)
        return CatchUp(rebuilt=True, why=why, checked=0, entries=LedgerEntry.objects.count(), state=state)
    started = timezone.now()
    since = state.watermark_created_at - OVERLAP if state.watermark_created_at else None
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(CANDIDATES))
        cursor.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE eloity_ledger_candidates ON COMMIT DROP AS "
                "SELECT user_id AS id, NULL::timestamptz AS created_at FROM {ledger} "
                "UNION SELECT u.id, u.created_at FROM {auth} u WHERE u.created_at >= %(since)s "
                "OR (%(since)s IS NULL AND u.created_at IS NOT NULL)"
            ).format(ledger=LEDGER, auth=statements.AUTH_USERS),
            {"since": since},
        )
        cursor.execute(sql.SQL("SELECT count(DISTINCT id) FROM {}").format(CANDIDATES))
        checked = cursor.fetchone()[0]
        cursor.execute(
            sql.SQL(
                "SELECT created_at, id FROM {} WHERE created_at IS NOT NULL ORDER BY 1 DESC, 2 DESC LIMIT 1"
            ).format(CANDIDATES)
        )
        newest = cursor.fetchone()
        cursor.execute(sql.SQL("DELETE FROM {}").format(LEDGER))
        cursor.execute(entries(plans, sql.SQL("u.id IN (SELECT id FROM {})").format(CANDIDATES), sql.SQL("TRUE")))
    if newest and (state.watermark_created_at is None or newest[0] > state.watermark_created_at):
        state.watermark_created_at, state.watermark_id = newest
    state.caught_up_at = started
    state.table_changes = _table_changes(plans)
    state.live_users = _live_users()
    state.save()
    return CatchUp(rebuilt=False, why="", checked=checked, entries=LedgerEntry.objects.count(), state=state)


def counts(plans: list[TablePlan], *, awaiting: sql.Composable | None = None) -> sql.Composed:
    """One row: per plan the entries lacking its table, then all entries; with `awaiting`
    (a condition on auth user `u`), then the entries awaiting confirmation (the ledger
    joined to auth.users by key: ledger-sized). The live sign-ups are the state's."""
    per_table = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {} = ANY(l.tables))").format(sql.Literal(plan.name)) for plan in plans
    )
    join = sql.SQL("")
    extra = sql.SQL("")
    if awaiting is not None:
        join = sql.SQL(" JOIN {} u ON u.id = l.user_id").format(statements.AUTH_USERS)
        extra = sql.SQL(", count(*) FILTER (WHERE {})").format(awaiting)
    return sql.SQL("SELECT {per_table}, count(*){extra} FROM {ledger} l{join}").format(
        per_table=per_table, extra=extra, ledger=LEDGER, join=join
    )


def blocked() -> sql.Composed:
    """Rows (table, reason, users, the first `%(limit)s` ids) from the ledger, then (NULL,
    NULL, users blocked anywhere, each once, NULL)."""
    return sql.SQL(
        "WITH b AS MATERIALIZED (SELECT l.user_id AS id, r.key AS tbl, r.value AS reason "
        "FROM {ledger} l CROSS JOIN LATERAL jsonb_each_text(l.reasons) r WHERE NOT (l.reasons = '{{}}'::jsonb)) "
        "SELECT tbl, reason, count(*), (array_agg(id ORDER BY id))[1:%(limit)s] FROM b GROUP BY tbl, reason "
        "UNION ALL SELECT NULL, NULL, count(DISTINCT id), NULL FROM b"
    ).format(ledger=LEDGER)


def counts_by_week(plans: list[TablePlan]) -> sql.Composed:
    """Rows (week, live sign-ups, entries lacking each plan's table, entries): the week is
    the Monday of sign-up in time zone `%(tz)s` (NULL without a sign-up time), as in
    `statements.status_counts(by_week=True)`; sign-ups from auth.users alone, the rest from
    the ledger."""
    zeros = sql.SQL(", ").join(sql.SQL("0") for _ in plans)
    per_table = sql.SQL(", ").join(
        sql.SQL("count(*) FILTER (WHERE {} = ANY(l.tables))").format(sql.Literal(plan.name)) for plan in plans
    )
    sums = sql.SQL(", ").join(sql.SQL("sum({})::bigint").format(sql.Identifier(f"m{i}")) for i in range(len(plans)))
    names = sql.SQL(", ").join(sql.Identifier(f"m{i}") for i in range(len(plans)))
    week = "date_trunc('week', {}.created_at AT TIME ZONE %(tz)s)::date"
    return sql.SQL(
        "SELECT w, sum(live)::bigint, {sums}, sum(a)::bigint FROM ("
        "SELECT {uweek} AS w, count(*) AS live, {zeros}, 0 AS a FROM {auth} u WHERE {population} GROUP BY 1 "
        "UNION ALL SELECT {lweek}, 0, {per_table}, count(*) FROM {ledger} l GROUP BY 1"
        ") c (w, live, {names}, a) GROUP BY w"
    ).format(
        sums=sums,
        uweek=sql.SQL(week.format("u")),
        lweek=sql.SQL(week.format("l")),
        zeros=zeros,
        auth=statements.AUTH_USERS,
        population=statements.POPULATION,
        per_table=per_table,
        ledger=LEDGER,
        names=names,
    )
