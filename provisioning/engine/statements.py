"""Every SQL statement that provisioning runs, composed with `psycopg.sql`.

All of them are set-based: one statement per table per batch, over an array of auth user
ids (`%(ids)s`), never one statement per user. Auth users are aliased `u`.
"""

from __future__ import annotations

from django.db import connection
from psycopg import sql

from provisioning.engine.plans import TablePlan
from provisioning.spec import literal

AUTH_USERS = sql.Identifier("auth", "users")

#: Who the status views and "all missing" runs look at: live, non-anonymous sign-ups.
POPULATION = sql.SQL("u.deleted_at IS NULL AND NOT u.is_anonymous")

SOFT_DELETED_REASON = "auth user is soft-deleted"


#: The other users of the same run, as a condition on auth user alias `p`.
PEERS_IN_BATCH = sql.SQL("p.id = ANY(%(ids)s)")


def missing(plan: TablePlan, alias: str = "u") -> sql.Composable:
    """True when auth user `alias` has no row in the plan's table."""
    if not plan.keyed:
        return sql.SQL("TRUE")
    return sql.SQL("NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = {alias}.id)").format(
        table=plan.spec.identifier(), key=sql.Identifier(plan.spec.key), alias=sql.Identifier(alias)
    )


def _has_parent(plan: TablePlan, link) -> sql.Composed:
    """True when auth user `u`'s row in the parent table of `link` (a same-user foreign key
    of the plan's table) exists."""
    return sql.SQL("EXISTS (SELECT 1 FROM {table} x WHERE {match})").format(
        table=link.parent.spec.identifier(),
        match=sql.SQL(" AND ").join(
            sql.SQL("x.{} = {}").format(sql.Identifier(ref), plan.columns[column].expression())
            for column, ref in zip(link.foreign_key.columns, link.foreign_key.ref_columns, strict=True)
        ),
    )


def _insert_into(plan: TablePlan) -> dict[str, sql.Composable]:
    """The parts of an `INSERT INTO {table} ({columns}) SELECT {values}` of the spec's row,
    over auth user `u`."""
    columns = list(plan.columns)
    return {
        "table": plan.spec.identifier(),
        "columns": sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        "values": sql.SQL(", ").join(plan.columns[c].expression() for c in columns),
    }


def as_text(statement: sql.Composable) -> str:
    """A composed statement as text, for Django's RawSQL (which takes a string)."""
    connection.ensure_connection()
    return statement.as_string(connection.connection)


def block_reason(
    plan: TablePlan,
    peers: sql.Composable = PEERS_IN_BATCH,
    peer_source: sql.Composable = AUTH_USERS,
    *,
    written: sql.Composable | None = None,
) -> sql.Composable:
    """Why auth user `u` cannot get a row in the plan's table, or NULL when it can.

    `peers` (a condition on alias `p`, a row of `peer_source`) are the other users of the
    same run: where two of them would write the same value to a unique column (an SSO
    sign-up sharing an email, say), the first by id gets the row and the others are
    blocked, so a dry run predicts exactly who wins.

    `written` (a subquery of auth user ids): after the run's insert, for the users it left
    without a row. The peers are then `%(ids)s` (those users) and the users `written` names,
    and each unique value is looked up in the table through its unique index
    (`holders_joins`, the row's owner `h<n>.owner`) instead of ranking every peer: an
    earlier peer who got the row is the row's owner, if `written` names it. The same
    reasons, for index probes of the few users left instead of a sort of the whole batch.
    """
    if plan.table_problem:
        return literal(plan.table_problem)
    whens = [sql.SQL("WHEN u.deleted_at IS NOT NULL THEN {}").format(literal(SOFT_DELETED_REASON))]
    for link in plan.same_user_parents:
        # The parent row is missing and cannot be written in this run either: the child
        # cannot be written (its foreign key would fail). A parent written in the same batch
        # comes first (plans are ordered parents first), so its children see it.
        has_parent = _has_parent(plan, link)
        if not link.parent_in_run:
            whens.append(
                sql.SQL("WHEN NOT {has} THEN {prefix}").format(has=has_parent, prefix=literal(link.reason_prefix))
            )
            continue
        whens.append(
            sql.SQL("WHEN NOT {has} AND ({why}) IS NOT NULL THEN {prefix} || ' (' || ({why}) || ')'").format(
                has=has_parent, why=block_reason(link.parent, peers, peer_source), prefix=literal(link.reason_prefix)
            )
        )
    unique_index = 0
    for blocker in plan.blockers:
        if blocker.kind == "null":
            (column,) = blocker.columns
            condition = sql.SQL("{} IS NULL").format(plan.columns[column].expression())
            whens.append(sql.SQL("WHEN {} THEN {}").format(condition, literal(blocker.reason)))
            continue
        shared = shared_reason(blocker)
        if written is not None:
            holder = _holder(unique_index)
            unique_index += 1
            whens.append(
                sql.SQL("WHEN {} THEN {}").format(
                    _earlier_peer_by_holder(plan, blocker, holder, written), literal(shared)
                )
            )
            whens.append(sql.SQL("WHEN {}.found THEN {}").format(holder, literal(blocker.reason)))
            continue
        # Checked before the table's own rows, so the reason is the same before and after
        # the first user's row is written: a dry run and a real run report alike.
        # "An earlier peer (by id) shares the value": the peers ranked by id within each
        # value, uncorrelated, so PostgreSQL computes it once per statement and hashes it.
        # (A correlated EXISTS over the peers is quadratic: minutes for one 5,000-user batch
        # and hours over a million-user population.)
        earlier_peer = sql.SQL(
            "u.id IN (SELECT d.id FROM (SELECT p.id, row_number() OVER (PARTITION BY {values} ORDER BY p.id) AS rn "
            "FROM {auth} p WHERE {peers} AND p.deleted_at IS NULL AND {not_null}) d WHERE d.rn > 1)"
        ).format(
            auth=peer_source,
            peers=peers,
            values=sql.SQL(", ").join(plan.columns[c].expression("p") for c in blocker.columns),
            not_null=sql.SQL(" AND ").join(
                sql.SQL("{} IS NOT NULL").format(plan.columns[c].expression("p")) for c in blocker.columns
            ),
        )
        whens.append(sql.SQL("WHEN {} THEN {}").format(earlier_peer, literal(shared)))
        taken = sql.SQL("EXISTS (SELECT 1 FROM {table} x WHERE {match})").format(
            table=plan.spec.identifier(),
            match=sql.SQL(" AND ").join(
                sql.SQL("x.{} = {}").format(sql.Identifier(c), plan.columns[c].expression()) for c in blocker.columns
            ),
        )
        whens.append(sql.SQL("WHEN {} THEN {}").format(taken, literal(blocker.reason)))
    return sql.SQL("CASE {} END").format(sql.SQL(" ").join(whens))


def shared_reason(blocker) -> str:
    """Why a user is refused a unique value an earlier user of the same run has or gets."""
    return f"{', '.join(blocker.columns)} shared with an earlier user of this run, who has or gets the row"


def _holder(index: int) -> sql.Identifier:
    return sql.Identifier(f"eloity_holder_{index}")


def unique_blockers(plan: TablePlan) -> list:
    """The plan's unique-value blockers, in the order `holders_joins` numbers them."""
    return [blocker for blocker in plan.blockers if blocker.kind != "null"]


def holders_joins(plan: TablePlan) -> sql.Composable:
    """For auth user `u`, per unique blocker of the plan (n in `unique_blockers` order),
    the table's row that holds u's value, found through the unique index: `h<n>.found`
    (TRUE, or NULL when no row holds it) and `h<n>.owner` (that row's key: the auth user
    it belongs to)."""
    joins = []
    for index, blocker in enumerate(unique_blockers(plan)):
        joins.append(
            sql.SQL(
                "LEFT JOIN LATERAL (SELECT x.{key} AS owner, TRUE AS found FROM {table} x WHERE {match} LIMIT 1) {h} "
                "ON TRUE"
            ).format(
                key=sql.Identifier(plan.spec.key),
                table=plan.spec.identifier(),
                match=sql.SQL(" AND ").join(
                    sql.SQL("x.{} = {}").format(sql.Identifier(c), plan.columns[c].expression())
                    for c in blocker.columns
                ),
                h=_holder(index),
            )
        )
    return sql.SQL(" ").join(joins)


def _earlier_peer_by_holder(plan: TablePlan, blocker, holder: sql.Identifier, written: sql.Composable) -> sql.Composed:
    """True when a peer with a lower id than auth user `u` shares u's value: the value's row
    was written by this run (`written`) for an earlier user, or an earlier one of the users
    left (`%(ids)s`) has it too. The ranking of `block_reason`, answered by the row itself:
    a peer that got the row holds it, and a unique index holds one row per value."""
    values = [plan.columns[c] for c in blocker.columns]
    return sql.SQL(
        "({u_not_null} AND ({h}.owner IN ({written}) AND {h}.owner < u.id "
        "OR u.id IN (SELECT q.id FROM {auth} q JOIN {auth} p ON {same} AND p.id < q.id "
        "WHERE q.id = ANY(%(ids)s) AND p.id = ANY(%(ids)s) AND p.deleted_at IS NULL AND {p_not_null})))"
    ).format(
        u_not_null=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(v.expression()) for v in values),
        h=holder,
        written=written,
        auth=AUTH_USERS,
        same=sql.SQL(" AND ").join(sql.SQL("{} = {}").format(v.expression("p"), v.expression("q")) for v in values),
        p_not_null=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(v.expression("p")) for v in values),
    )


def _holder_columns(plan: TablePlan) -> sql.Composable:
    return sql.SQL("").join(sql.SQL(", {}.owner").format(_holder(i)) for i in range(len(unique_blockers(plan))))


def missing_in_batch(plan: TablePlan) -> sql.Composed:
    """Rows (user id, reason or NULL, then per unique blocker the owner of the row holding
    the user's value, or NULL) for the users `%(ids)s` that lack a row in the table.

    A NULL reason means a real run would write the row."""
    return sql.SQL(
        "SELECT u.id, {reason}{holders} FROM {auth} u {joins} WHERE u.id = ANY(%(ids)s) AND {missing} ORDER BY u.id"
    ).format(
        reason=block_reason(plan),
        holders=_holder_columns(plan),
        auth=AUTH_USERS,
        joins=holders_joins(plan),
        missing=missing(plan),
    )


def left_after_insert(plan: TablePlan) -> sql.Composed:
    """As `missing_in_batch`, for the users `%(ids)s` a range batch's insert left without a
    row (few): the other users of the run are those it wrote to the table (`WRITTEN`) and
    these. The insert let the unique indexes find the collisions (`ON CONFLICT DO
    NOTHING`); this names each one, and its row's owner, by probing those indexes for these
    users alone (`block_reason`'s `written`)."""
    written = sql.SQL("SELECT w.id FROM {w} w WHERE w.tbl = {name}").format(w=WRITTEN, name=sql.Literal(plan.name))
    peers = sql.SQL("(p.id = ANY(%(ids)s) OR p.id IN ({}))").format(written)
    return sql.SQL(
        "SELECT u.id, {reason}{holders} FROM {auth} u {joins} WHERE u.id = ANY(%(ids)s) AND {missing} ORDER BY u.id"
    ).format(
        reason=block_reason(plan, peers, written=written),
        holders=_holder_columns(plan),
        auth=AUTH_USERS,
        joins=holders_joins(plan),
        missing=missing(plan),
    )


def insert_missing(plan: TablePlan) -> sql.Composed:
    """Insert the spec's row for each of the batch's users that lacks one and is not blocked.

    Idempotent: NOT EXISTS skips rows already there, ON CONFLICT DO NOTHING absorbs a row
    committed meanwhile (or any other unique collision). Returns the auth user ids written.
    """
    return sql.SQL(
        "INSERT INTO {table} ({columns}) "
        "SELECT {values} FROM {auth} u "
        "WHERE u.id = ANY(%(ids)s) AND {missing} AND ({reason}) IS NULL "
        "ON CONFLICT DO NOTHING RETURNING {key}"
    ).format(
        **_insert_into(plan),
        auth=AUTH_USERS,
        missing=missing(plan),
        reason=block_reason(plan),
        key=sql.Identifier(plan.spec.key),
    )


def _writable_in_range(plan: TablePlan) -> sql.Composable:
    """True when auth user `u` of a range may get the plan's row: what the database would
    reject outright is left out (a NULL for a NOT NULL column, a parent row that is not
    there: parents are written first, so this is the truth at this point of the batch).

    Unique collisions are not checked per row here: `ON CONFLICT DO NOTHING` skips them
    (the first user by id wins, the statement writes in id order) and the users it skipped
    get their reason afterwards (`missing_in_batch`), as few as they are.
    """
    conditions = [
        sql.SQL("{} IS NOT NULL").format(plan.columns[blocker.columns[0]].expression())
        for blocker in plan.blockers
        if blocker.kind == "null"
    ]
    for link in plan.same_user_parents:
        conditions.append(_has_parent(plan, link))
    return sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")


def missing_in_range(plan: TablePlan) -> sql.Composable:
    """True when auth user `u` has no row in the plan's table, for `u.id` in the range
    (`%(lo)s`, `%(hi)s`]. The bounds, repeated on the table's key, let PostgreSQL read only
    that slice of the table: a merge or hash anti-join over the range, whether the key
    column has an index or not (without one, a per-user probe is a scan of the table)."""
    return sql.SQL(
        "NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = u.id AND x.{key} > %(lo)s AND x.{key} <= %(hi)s)"
    ).format(table=plan.spec.identifier(), key=sql.Identifier(plan.spec.key))


#: The auth user ids a range batch wrote, per table: a temporary table that lives as long as
#: the batch's transaction. The batch's audit event is built from it in SQL, so however
#: large the batch, its ids never pass through the client.
WRITTEN = sql.Identifier("pg_temp", "eloity_written")


def create_written() -> sql.Composed:
    return sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS eloity_written (tbl text NOT NULL, id uuid NOT NULL) ON COMMIT DROP"
    )


def clear_written() -> sql.Composed:
    return sql.SQL("TRUNCATE {}").format(WRITTEN)


def keep_written() -> sql.Composed:
    """Record `%(ids)s` as written to table `%(table)s` (the per-row fallback's rows)."""
    return sql.SQL("INSERT INTO {} (tbl, id) SELECT %(table)s, unnest(%(ids)s::uuid[])").format(WRITTEN)


#: The live users of a range batch who lack a row in some table, with the auth columns the
#: spec reads and a flag per table: read from auth.users once per batch, then each table's
#: statement reads this small table (`create_batch`).
BATCH = sql.Identifier("pg_temp", "eloity_batch")


def _missing_flag(index: int) -> sql.Identifier:
    return sql.Identifier(f"eloity_missing_{index}")


def window_end() -> sql.Composed:
    """The auth user id `%(window)s` users after `%(lo)s` (NULL past the last one): how far
    one batch looks for users lacking a row."""
    return sql.SQL("SELECT u.id FROM {} u WHERE u.id > %(lo)s ORDER BY u.id OFFSET %(window)s LIMIT 1").format(
        AUTH_USERS
    )


def count_between() -> sql.Composed:
    """How many auth users have an id in (`%(lo)s`, `%(hi)s`] (an index-only count)."""
    return sql.SQL("SELECT count(*) FROM {} u WHERE u.id > %(lo)s AND u.id <= %(hi)s").format(AUTH_USERS)


def create_batch(plans: list[TablePlan]) -> sql.Composed:
    """Fill `BATCH` with the first `%(limit)s` auth users in (`%(lo)s`, `%(end)s`] who lack a
    row in some plan's table, live or not (`eloity_live`: in the population). They are found
    with the auth.users primary key and each table's keys in that window alone (index-only
    where the key is indexed; one scan of the window's rows where it is not); only they are
    then read from auth.users' heap, once for all tables."""
    columns: list[str] = []
    for plan in plans:
        columns += [c for c in _auth_columns(plan) if c not in columns]
    branches = []
    for i, plan in enumerate(plans):
        flags = sql.SQL(", ").join(sql.Literal(j == i) for j in range(len(plans)))
        if not plan.keyed:
            condition = sql.SQL("TRUE")
        else:
            # An anti-join of the window's ids with the table's keys in the window: a merge
            # of two index ranges, or one (parallel) hash of the slice where the key has no
            # index; several rows of one user (no unique key) cost nothing more.
            condition = sql.SQL(
                "NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = a.id AND x.{key} > %(lo)s AND x.{key} <= %(end)s)"
            ).format(table=plan.spec.identifier(), key=sql.Identifier(plan.spec.key))
        branches.append(
            sql.SQL(
                "SELECT a.id, {flags} FROM {auth} a WHERE a.id > %(lo)s AND a.id <= %(end)s AND {condition}"
            ).format(flags=flags, auth=AUTH_USERS, condition=condition)
        )
    names = [_missing_flag(i) for i in range(len(plans))]
    return sql.SQL(
        "CREATE TEMPORARY TABLE eloity_batch ON COMMIT DROP AS "
        "SELECT {columns}, {flags}, ({population}) AS eloity_live FROM ("
        "SELECT m.id, {any_flags} FROM ({branches}) AS m (id, {names}) GROUP BY m.id ORDER BY m.id LIMIT %(limit)s"
        ") c JOIN {auth} u ON u.id = c.id"
    ).format(
        columns=sql.SQL(", ").join(sql.SQL("u.{}").format(sql.Identifier(c)) for c in columns),
        flags=sql.SQL(", ").join(sql.SQL("c.{}").format(n) for n in names),
        any_flags=sql.SQL(", ").join(sql.SQL("bool_or(m.{n}) AS {n}").format(n=n) for n in names),
        branches=sql.SQL(" UNION ALL ").join(branches),
        names=sql.SQL(", ").join(names),
        auth=AUTH_USERS,
        population=POPULATION,
    )


def drop_batch() -> sql.Composed:
    """Drop `BATCH` if the transaction already has one (a run inside a caller's transaction,
    whose batches are savepoints: ON COMMIT DROP has not come yet)."""
    return sql.SQL("DROP TABLE IF EXISTS {}").format(BATCH)


def batch_missing(plans: list[TablePlan], plan: TablePlan) -> sql.Composed:
    """The ids of the batch's live users lacking a row in the plan's table."""
    return sql.SQL("SELECT u.id FROM {batch} u WHERE u.eloity_live AND u.{flag} ORDER BY u.id").format(
        batch=BATCH, flag=_missing_flag(plans.index(plan))
    )


def batch_left(plans: list[TablePlan]) -> sql.Composed:
    """The ids of the batch's users (`BATCH`) who may still lack a row after its writes:
    those lacking a table the batch wrote them no row in (`WRITTEN`). A subquery."""
    lacking = [
        sql.SQL("(b.{flag} AND b.id NOT IN (SELECT w.id FROM {w} w WHERE w.tbl = {name}))").format(
            flag=_missing_flag(i), w=WRITTEN, name=sql.Literal(plan.name)
        )
        for i, plan in enumerate(plans)
    ]
    return sql.SQL("SELECT b.id FROM {batch} b WHERE {lacking}").format(
        batch=BATCH, lacking=sql.SQL(" OR ").join(lacking)
    )


def batch_users() -> sql.Composed:
    """(How many auth users the batch found, the last of them (live or not), how many are
    live, the first `%(sample)s` live ones)."""
    return sql.SQL(
        "SELECT count(*), (array_agg(id ORDER BY id DESC))[1], count(*) FILTER (WHERE eloity_live), "
        "(array_agg(id ORDER BY id) FILTER (WHERE eloity_live))[1:%(sample)s] FROM {}"
    ).format(BATCH)


def write_range(plans: list[TablePlan], plan: TablePlan) -> sql.Composed:
    """Insert the spec's row for every user of the batch (`BATCH`) lacking one: one
    statement per table per batch, as set-based as the hand-written `INSERT ... SELECT ...
    WHERE NOT EXISTS ... ON CONFLICT DO NOTHING`. The ids written go to `WRITTEN`; the
    statement returns how many, and the ids of the users left without a row (few: a NULL
    for a NOT NULL column, a parent row missing, a unique collision), whose reasons the
    caller then asks for.

    Where the key column is not unique, the row is looked for again first (within the
    range: a scan of that slice without an index), against a row written since the batch
    was read; a unique key lets `ON CONFLICT DO NOTHING` do that. A row the database
    rejects fails the statement: the caller then falls back to `insert_missing`.
    """
    recheck = sql.SQL("")
    if not plan.key_is_unique:
        recheck = sql.SQL(" AND {}").format(missing_in_range(plan))
    return sql.SQL(
        "WITH written AS (INSERT INTO {table} ({columns}) SELECT {values} FROM {batch} u "
        "WHERE u.eloity_live AND u.{flag} AND {writable}{recheck} "
        "ORDER BY u.id ON CONFLICT DO NOTHING RETURNING {key} AS id), "
        "kept AS (INSERT INTO {written_table} (tbl, id) SELECT {name}, w.id FROM written w RETURNING id) "
        "SELECT (SELECT count(*) FROM kept), "
        "ARRAY(SELECT u.id FROM {batch} u WHERE u.eloity_live AND u.{flag} "
        "AND NOT EXISTS (SELECT 1 FROM kept k WHERE k.id = u.id) "
        "ORDER BY u.id)"
    ).format(
        **_insert_into(plan),
        batch=BATCH,
        flag=_missing_flag(plans.index(plan)),
        writable=_writable_in_range(plan),
        recheck=recheck,
        key=sql.Identifier(plan.spec.key),
        written_table=WRITTEN,
        name=sql.Literal(plan.name),
    )


def written_summary(sample: int) -> sql.Composed:
    """Per table written in this batch: (table, count, the first `sample` ids)."""
    return sql.SQL("SELECT tbl, count(*), (array_agg(id ORDER BY id))[1:{n}] FROM {w} GROUP BY tbl").format(
        n=sql.Literal(sample), w=WRITTEN
    )


#: The audit event's user ids and rows of a range batch, built in SQL from `WRITTEN` (plain
#: SQL with %s placeholders: RawSQL values for the event's fields).
RANGE_EVENT_TARGETS = "ARRAY(SELECT id FROM pg_temp.eloity_batch WHERE eloity_live ORDER BY id)"


def range_event_rows(tables: list[str]) -> sql.Composed:
    """The audit event's `rows_created` of a range batch: {table: [ids written, as text]}
    from `WRITTEN`. (One jsonb_build_object over the known tables: jsonb_object_agg of
    large arrays takes seconds where this takes a tenth.)"""
    return sql.SQL("jsonb_build_object({})").format(
        sql.SQL(", ").join(
            sql.SQL(
                "{name}, COALESCE((SELECT jsonb_agg(w.id::text ORDER BY w.id) FROM {w} w WHERE w.tbl = {name}), "
                "'[]'::jsonb)"
            ).format(name=sql.Literal(table), w=WRITTEN)
            for table in tables
        )
    )


def existing_users() -> sql.Composed:
    """Which of `%(ids)s` are auth users."""
    return sql.SQL("SELECT u.id FROM {auth} u WHERE u.id = ANY(%(ids)s)").format(auth=AUTH_USERS)


def _ids_missing_after(plan: TablePlan) -> sql.Composed:
    """The next `%(limit)s` auth user ids (`a.id`) after `%(after)s` lacking a row in the
    plan's table, in id order, each tagged with the table's name.

    No population filter here: reading `deleted_at`/`is_anonymous` means a heap fetch per
    auth user, while this anti-join of two indexes (auth.users' primary key and the app
    table's key) touches no heap at all. Callers filter the (few) candidates afterwards.
    """
    if not plan.keyed:
        condition = sql.SQL("TRUE")
    else:
        # `x.key > after` is redundant (x.key = a.id > after) but lets the app table's index
        # scan start at `after` instead of at its beginning, batch after batch.
        condition = sql.SQL("NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{key} = a.id AND x.{key} > %(after)s)").format(
            table=plan.spec.identifier(), key=sql.Identifier(plan.spec.key)
        )
    return sql.SQL(
        "(SELECT a.id, {name} AS missing_from FROM {auth} a WHERE a.id > %(after)s AND {condition} "
        "ORDER BY a.id LIMIT %(limit)s)"
    ).format(name=sql.Literal(plan.name), auth=AUTH_USERS, condition=condition)


def next_missing_candidates(plans: list[TablePlan]) -> sql.Composed:
    """The next `%(limit)s` auth user ids after `%(after)s` missing a row in any plan's table,
    in id order: (id, in the population (live, non-anonymous)?, the tables it lacks).

    One keyset branch per table (an index-only anti-join), merged: no auth user that has
    every row is read from the heap, and each batch then touches a table only for the users
    that lack it. The caller keeps the population's ids and continues after the last
    candidate, so a run of soft-deleted users cannot end it early.
    """
    return sql.SQL(
        "SELECT c.id, ({population}), c.missing_from FROM ("
        "SELECT m.id, array_agg(m.missing_from) AS missing_from FROM ({branches}) m "
        "GROUP BY m.id ORDER BY m.id LIMIT %(limit)s) c "
        "JOIN {auth} u ON u.id = c.id ORDER BY c.id"
    ).format(
        population=POPULATION,
        branches=sql.SQL(" UNION ALL ").join(_ids_missing_after(p) for p in plans),
        auth=AUTH_USERS,
    )


def lock_table(plan: TablePlan) -> sql.Composed:
    """Serialise provisioning writes to one table for the rest of the transaction.

    Without a unique index on the key (profiles shape A), two concurrent INSERT ... WHERE
    NOT EXISTS could both insert; the lock makes the second see the first's rows.
    """
    return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
        sql.Literal(f"eloity_admin.provision:{plan.spec.qualified_name}")
    )


def _auth_columns(plan: TablePlan) -> list[str]:
    """The auth.users columns a plan's block reasons read (only those: the dashboard's role
    may be granted SELECT on the non-secret columns alone)."""
    columns = ["id", "deleted_at", "is_anonymous"]
    for value in plan.columns.values():
        column = getattr(value, "column", None) or ("raw_user_meta_data" if hasattr(value, "key") else None)
        if column and column not in columns:
            columns.append(column)
    for link in plan.same_user_parents:  # a chained reason reads the parent's columns too
        columns += [c for c in _auth_columns(link.parent) if c not in columns]
    return columns


def _blocked_in_population(plan: TablePlan, select: str, tail: str) -> sql.Composed:
    # The live users lacking a row are found first (a hash anti-join), and only they get
    # their reason worked out: left to itself the planner evaluates the reason, with its
    # index probes, for every auth user before the anti-join.
    return sql.SQL(
        "WITH missing AS MATERIALIZED (SELECT {columns} FROM {auth} u WHERE {population} AND {missing}) "
        "SELECT {select} FROM missing u CROSS JOIN LATERAL (SELECT {reason} AS reason) r "
        "WHERE r.reason IS NOT NULL {tail}"
    ).format(
        columns=sql.SQL(", ").join(sql.SQL("u.{}").format(sql.Identifier(c)) for c in _auth_columns(plan)),
        select=sql.SQL(select),
        auth=AUTH_USERS,
        # Only users who lack the row compete for a unique value: ranking just those (the
        # CTE) keeps this a sort of the few missing users, not of the whole population. (A
        # user whose earlier twin already has the row is blocked by the table's rows instead.)
        reason=block_reason(plan, sql.SQL("TRUE"), sql.Identifier("missing")),
        population=POPULATION,
        missing=missing(plan),
        tail=sql.SQL(tail),
    )


def blocked_users(plans: list[TablePlan]) -> sql.Composed:
    """The ids of population users lacking a row in any of the plans' tables that they
    cannot get (a subquery for `id IN (...)`; reasons are literals with `%` doubled)."""
    return sql.SQL(" UNION ").join(
        sql.SQL("({})").format(_blocked_in_population(plan, "u.id", "")) for plan in plans if plan.may_block_live_users
    ) or sql.SQL("SELECT NULL::uuid WHERE FALSE")


def blocked_by_reason(plan: TablePlan) -> sql.Composed:
    """(reason, count, the first `%(limit)s` user ids) for population users lacking a row in
    the table who cannot get one: one pass, counted in SQL.

    Run it with parameters: reasons are literals with `%` doubled.
    """
    return _blocked_in_population(
        plan,
        "r.reason, count(*), (array_agg(u.id ORDER BY u.id))[1:%(limit)s]",
        "GROUP BY r.reason ORDER BY count(*) DESC, r.reason",
    )


def blocked_summary(plans: list[TablePlan]) -> sql.Composed:
    """Who cannot be provisioned, in one pass: a row (plan index, reason, users, the first
    `%(limit)s` user ids) per table and reason, in plan order, most users first; then one
    row (NULL, NULL, users, NULL) counting the users blocked in any table once each (a user
    blocked in three tables is three rows above, one here).

    Run it with parameters: reasons are literals with `%` doubled.
    """
    parts = [
        sql.SQL("SELECT {i} AS t, b.id, b.reason FROM ({blocked}) b").format(
            i=sql.Literal(i), blocked=_blocked_in_population(plan, "u.id, r.reason", "")
        )
        for i, plan in enumerate(plans)
        if plan.may_block_live_users
    ]
    if not parts:
        return sql.SQL("SELECT NULL::int, NULL::text, 0::bigint, NULL::uuid[]")
    return sql.SQL(
        "WITH blocked AS MATERIALIZED ({parts}) "
        "SELECT t, reason, count(*) AS n, (array_agg(id ORDER BY id))[1:%(limit)s] FROM blocked GROUP BY t, reason "
        "UNION ALL SELECT NULL, NULL, count(DISTINCT id), NULL FROM blocked "
        "ORDER BY t NULLS LAST, n DESC, reason"
    ).format(parts=sql.SQL(" UNION ALL ").join(parts))


def _joined(plan: TablePlan, alias: str, after: sql.Composable | None = None) -> sql.Composable:
    """LEFT JOIN the plan's table keys as `alias`.k: NULL where the user has no row.
    `after`: only keys above it (the caller reads only auth users above it)."""
    if not plan.keyed:
        return sql.SQL("LEFT JOIN (SELECT NULL::uuid AS k) {a} ON FALSE").format(a=sql.Identifier(alias))
    # Without a unique key (profiles shape A) a user may have two rows: join distinct keys.
    keys = "SELECT DISTINCT {key} AS k FROM {table}" if not plan.key_is_unique else "SELECT {key} AS k FROM {table}"
    if after is not None:
        keys += " WHERE {key} > {after}"
    keys = sql.SQL(keys).format(key=sql.Identifier(plan.spec.key), table=plan.spec.identifier(), after=after)
    return sql.SQL("LEFT JOIN ({keys}) {a} ON {a}.k = u.id").format(keys=keys, a=sql.Identifier(alias))


def status_counts(
    plans: list[TablePlan], *, by_week: bool = False, awaiting: sql.Composable | None = None
) -> sql.Composed:
    """One row: live users, then users missing a row per plan (in order), then missing any;
    with `awaiting` (a condition on `u`: unconfirmed, where provisioning waits for
    confirmation), then how many of those missing any are awaiting confirmation.

    One pass over auth.users with a hash join per table: about 1 s at a million users,
    where separate anti-join counts plus a UNION for "missing any" take three times that.
    `by_week`: one such row per week of sign-up, the week (a date, its Monday in time zone
    `%(tz)s`, NULL without a sign-up time) first.
    """
    aliases = [f"t{i}" for i in range(len(plans))]
    missing_each = [sql.SQL("{}.k IS NULL").format(sql.Identifier(a)) for a in aliases]
    return sql.SQL(
        "SELECT {week}count(*), {each}, count(*) FILTER (WHERE {any}){awaiting} FROM {auth} u {joins} "
        "WHERE {population}{group}"
    ).format(
        awaiting=sql.SQL(", count(*) FILTER (WHERE ({}) AND {})").format(sql.SQL(" OR ").join(missing_each), awaiting)
        if awaiting is not None
        else sql.SQL(""),
        week=sql.SQL("date_trunc('week', u.created_at AT TIME ZONE %(tz)s)::date, " if by_week else ""),
        group=sql.SQL(" GROUP BY 1" if by_week else ""),
        each=sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(m) for m in missing_each),
        any=sql.SQL(" OR ").join(missing_each),
        auth=AUTH_USERS,
        joins=sql.SQL(" ").join(_joined(p, a) for p, a in zip(plans, aliases, strict=True)),
        population=POPULATION,
    )


def users_by_coverage(plans: list[TablePlan], *, complete: bool, after=None) -> sql.Composed:
    """The ids of auth users lacking a row in any plan's table (`complete`: having one in
    every table), as a subquery for `id IN (...)`: one pass over auth.users with a hash join
    per table, the shape `status_counts` uses.

    For lists over tables without an index on the key column: there, "missing anything"
    written as an OR of NOT EXISTS probes scans a table for every auth user (69 s for a
    page at a million users), while this reads each table once. `after` (an auth user id):
    only users above it, and only that part of each table (a list page's cursor).
    """
    aliases = [f"t{i}" for i in range(len(plans))]
    bound = sql.Literal(str(after)) if after is not None else None
    if complete:
        condition = sql.SQL(" AND ").join(sql.SQL("{}.k IS NOT NULL").format(sql.Identifier(a)) for a in aliases)
    else:
        condition = sql.SQL(" OR ").join(sql.SQL("{}.k IS NULL").format(sql.Identifier(a)) for a in aliases)
    if bound is not None:
        condition = sql.SQL("u.id > {}::uuid AND ({})").format(bound, condition)
        bound = sql.SQL("{}::uuid").format(bound)
    return sql.SQL("SELECT u.id FROM {auth} u {joins} WHERE {condition}").format(
        auth=AUTH_USERS,
        joins=sql.SQL(" ").join(_joined(p, a, bound) for p, a in zip(plans, aliases, strict=True)),
        condition=condition,
    )
