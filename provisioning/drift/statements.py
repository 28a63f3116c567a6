"""The SQL of the drift report, the value sync and the orphan removal, composed with
psycopg.sql over the copied columns (`columns.CopiedColumn`). App rows are aliased `x`,
auth users `u`. Set-based: one statement per table per batch."""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from provisioning.drift.columns import CopiedColumn
from provisioning.engine.statements import AUTH_USERS, POPULATION
from provisioning.spec import TableSpec


def _any_differs(columns: list[CopiedColumn]) -> sql.Composable:
    return sql.SQL("({})").format(sql.SQL(" OR ").join(c.differs() for c in columns))


def _joined(spec: TableSpec) -> sql.Composable:
    """`{table} x JOIN auth.users u ON u.id = x.{key}`: live users' rows only."""
    return sql.SQL("{t} x JOIN {auth} u ON u.id = x.{k} AND {population}").format(
        t=spec.identifier(), auth=AUTH_USERS, k=sql.Identifier(spec.key), population=POPULATION
    )


def _of_users(spec: TableSpec) -> sql.Composed:
    """The joined rows of users `%(ids)s` (both sides probed by key)."""
    return sql.SQL("x.{k} = ANY(%(ids)s) AND u.id = ANY(%(ids)s)").format(k=sql.Identifier(spec.key))


def _after_cursor(spec: TableSpec) -> sql.Composed:
    """The joined rows of users after `%(after)s` (both sides bounded)."""
    return sql.SQL("x.{k} > %(after)s AND u.id > %(after)s").format(k=sql.Identifier(spec.key))


def drift_counts(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """One row: per column, the live users' rows whose value differs from the auth user's
    (NULL-aware, case-sensitive), then the rows where any does. One pass over the table."""
    return sql.SQL("SELECT {each}, count(*) FILTER (WHERE {any}) FROM {joined}").format(
        each=sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(c.differs()) for c in columns),
        any=_any_differs(columns),
        joined=_joined(spec),
    )


def drifted_keys(
    spec: TableSpec, columns: list[CopiedColumn], *, after: str | None = None, where: sql.Composable | None = None
) -> sql.Composed:
    """The keys (auth user ids) of live users whose row differs, as a subquery; `after`:
    only ids above it (a keyset page); `where`: a further condition on the joined rows."""
    bound = (
        sql.SQL(" AND x.{} > {}::uuid").format(sql.Identifier(spec.key), sql.Literal(after)) if after else sql.SQL("")
    )
    more = sql.SQL(" AND {}").format(where) if where is not None else sql.SQL("")
    return sql.SQL("SELECT x.{k} FROM {joined} WHERE {any}{bound}{more}").format(
        k=sql.Identifier(spec.key), joined=_joined(spec), any=_any_differs(columns), bound=bound, more=more
    )


def keep_drifted(tables: list[tuple[TableSpec, list[CopiedColumn]]], into: str) -> sql.Composed:
    """Insert into table `into` (the dashboard's DriftedUser) every live user whose copied
    values differ in any table: one hash join per table."""
    return sql.SQL("INSERT INTO {} (user_id) {}").format(
        sql.Identifier(into), sql.SQL(" UNION ").join(drifted_keys(spec, columns) for spec, columns in tables)
    )


def drifted_row(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """True when the outer query's auth user (`auth.users`, unaliased, as Django writes the
    list's query) has a row here whose copied value differs: one probe by key per user the
    list walks, for a key with an index."""
    return sql.SQL("EXISTS (SELECT 1 FROM {t} x WHERE x.{k} = {outer}.id AND ({any}))").format(
        t=spec.identifier(),
        k=sql.Identifier(spec.key),
        outer=sql.Identifier("auth", "users"),
        any=sql.SQL(" OR ").join(
            sql.SQL("{} IS DISTINCT FROM {}").format(c.app_value(), c.auth_value("users")) for c in columns
        ),
    )


def user_values(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """For user `%(id)s`, when live (soft-deleted and anonymous users are never synced):
    each column's app value and auth value, as text, and whether they differ (one row per
    app row)."""
    return sql.SQL("SELECT {pairs} FROM {joined} WHERE x.{k} = %(id)s").format(
        pairs=sql.SQL(", ").join(
            sql.SQL("{}::text, {}::text, {}").format(c.app_value(), c.auth_value(), c.differs()) for c in columns
        ),
        joined=_joined(spec),
        k=sql.Identifier(spec.key),
    )


def users_values(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """`user_values` for the live users `%(ids)s` (a list page's): the key first, then each
    column's app value, auth value (text) and whether they differ; rows where any does."""
    return sql.SQL("SELECT x.{k}, {pairs} FROM {joined} WHERE {of_users} AND ({any})").format(
        k=sql.Identifier(spec.key),
        pairs=sql.SQL(", ").join(
            sql.SQL("{}::text, {}::text, {}").format(c.app_value(), c.auth_value(), c.differs()) for c in columns
        ),
        joined=_joined(spec),
        of_users=_of_users(spec),
        any=sql.SQL(" OR ").join(c.differs() for c in columns),
    )


def unique_clashes(spec: TableSpec, column: CopiedColumn) -> sql.Composed:
    """For the users `%(ids)s` whose value in a unique `column` would change: the new value
    (text), the key of another row already holding it (or NULL), and how many of these
    users want that same value."""
    return sql.SQL(
        "SELECT w.k, w.v::text, (SELECT y.{k} FROM {t} y WHERE y.{c} = w.v AND y.{k} IS DISTINCT FROM w.k LIMIT 1), "
        "count(*) OVER (PARTITION BY w.v) FROM (SELECT x.{k} AS k, {new} AS v FROM {joined} "
        "WHERE x.{k} = ANY(%(ids)s) AND {differs} AND {new} IS NOT NULL) w"
    ).format(
        k=sql.Identifier(spec.key),
        t=spec.identifier(),
        c=sql.Identifier(column.column),
        new=column.auth_value(),
        joined=_joined(spec),
        differs=column.differs(),
    )


#: What a batch of a sync changed, one row per value: (table, column, user id, the row's
#: location before the write, old, new) as text. A temporary table that lives as long as
#: the batch's transaction: the batch's audit event and its counts are built from it in
#: SQL, so however large the batch, its values never pass through the client.
SYNCED = sql.Identifier("pg_temp", "eloity_synced")


def create_synced() -> sql.Composed:
    return sql.SQL(
        "CREATE TEMPORARY TABLE IF NOT EXISTS eloity_synced "
        "(tbl text NOT NULL, col text NOT NULL, k uuid NOT NULL, row_id tid NOT NULL, old text, new text) "
        "ON COMMIT DROP"
    )


def clear_synced() -> sql.Composed:
    """Empty `SYNCED` (a run inside a caller's transaction, whose batches are savepoints:
    ON COMMIT DROP has not come yet)."""
    return sql.SQL("TRUNCATE {}").format(SYNCED)


def drop_drift_batch(index: int) -> sql.Composed:
    """Drop `drift_batch(index)` if this transaction has one already (as `clear_synced`)."""
    return sql.SQL("DROP TABLE IF EXISTS {}").format(drift_batch(index))


def drift_batch(index: int) -> sql.Identifier:
    """The rows of one table a batch brings in step (`create_drift_batch`)."""
    return sql.Identifier("pg_temp", f"eloity_drift_{index}")


def create_drift_batch(spec: TableSpec, columns: list[CopiedColumn], index: int, *, by_ids: bool) -> sql.Composed:
    """Fill `drift_batch(index)` with the table's rows whose copied values differ: each
    row's location (ctid), key, and per column the app's value and the auth user's. Either
    the rows of users `%(ids)s` (probes by key), or, for "all drifted", the rows of the
    first `%(limit)s` drifted users after `%(after)s` in id order (every row of each: a
    table without a unique key may hold several rows of a user).

    "All drifted" is found with one hash join of the table and auth.users, both bounded by
    the cursor, then ordered: asked for in key order directly, the planner walks both
    primary keys in step and reads auth.users row by row (8.7 s for 48,000 drifted users at
    a million where this takes 1.1 s, docs/performance.md)."""
    found = sql.SQL("SELECT x.ctid AS row_id, x.{k} AS k, {pairs} FROM {joined} WHERE {any} AND {which}").format(
        k=sql.Identifier(spec.key),
        pairs=sql.SQL(", ").join(
            sql.SQL("{} AS {}, {} AS {}").format(
                c.app_value(), sql.Identifier(f"old_{i}"), c.auth_value(), sql.Identifier(f"new_{i}")
            )
            for i, c in enumerate(columns)
        ),
        joined=_joined(spec),
        any=_any_differs(columns),
        which=_of_users(spec) if by_ids else _after_cursor(spec),
    )
    if not by_ids:
        found = sql.SQL(
            "WITH d AS MATERIALIZED ({}) "
            "SELECT * FROM d WHERE k IN (SELECT DISTINCT k FROM d ORDER BY k LIMIT %(limit)s)"
        ).format(found)
    return sql.SQL("CREATE TEMPORARY TABLE {name} ON COMMIT DROP AS {found}").format(
        name=sql.Identifier(f"eloity_drift_{index}"), found=found
    )


def batch_end(count: int) -> sql.Composed:
    """(The last key of the batch, how many users it holds): the first `%(limit)s` keys of
    the `count` drift tables together, so that a batch never exceeds its size in users."""
    keys = sql.SQL(" UNION ").join(sql.SQL("SELECT k FROM {}").format(drift_batch(i)) for i in range(count))
    return sql.SQL("SELECT (array_agg(k ORDER BY k DESC))[1], count(*) FROM ({} ORDER BY k LIMIT %(limit)s) b").format(
        keys
    )


def _keep_changes(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """`INSERT INTO SYNCED` the values changed, from the UPDATE `upd` returning the row's
    location before the write, the key, then each column's old value and the value stored
    (after the table's own triggers, if any)."""
    values = sql.SQL(", ").join(
        sql.SQL("({c}, {o}::text, {n}::text, {o} IS DISTINCT FROM {n})").format(
            c=sql.Literal(c.column),
            o=sql.SQL("upd.{}").format(sql.Identifier(f"old_{i}")),
            n=sql.SQL("upd.{}").format(sql.Identifier(f"new_{i}")),
        )
        for i, c in enumerate(columns)
    )
    return sql.SQL(
        "INSERT INTO {synced} (tbl, col, k, row_id, old, new) "
        "SELECT {tbl}, v.col, upd.k::uuid, upd.row_id, v.old, v.new "
        "FROM upd, LATERAL (VALUES {values}) v (col, old, new, changed) WHERE v.changed"
    ).format(synced=SYNCED, tbl=sql.Literal(spec.qualified_name), values=values)


def _stored(columns: list[CopiedColumn], source: str) -> sql.Composed:
    """The RETURNING list of an UPDATE: per column the old value (from `source`) and the
    value now stored."""
    return sql.SQL(", ").join(
        sql.SQL("{s}.{o}, x.{c} AS {n}").format(
            s=sql.Identifier(source),
            o=sql.Identifier(f"old_{i}"),
            c=sql.Identifier(c.column),
            n=sql.Identifier(f"new_{i}"),
        )
        for i, c in enumerate(columns)
    )


def _guards(
    spec: TableSpec, columns: list[CopiedColumn], new: Callable[[int, CopiedColumn], sql.Composable]
) -> sql.Composed:
    """A row whose new value on a unique column another row already holds is left alone
    (the caller reports it), so one collision does not fail the statement."""
    return sql.Composed(
        [
            sql.SQL(
                " AND NOT EXISTS (SELECT 1 FROM {t} y WHERE y.{c} = {new} AND y.{k} IS DISTINCT FROM x.{k})"
            ).format(
                t=spec.identifier(),
                c=sql.Identifier(c.column),
                new=new(i, c),
                k=sql.Identifier(spec.key),
            )
            for i, c in enumerate(columns)
            if c.unique
        ]
    )


def sync_batch(spec: TableSpec, columns: list[CopiedColumn], index: int) -> sql.Composed:
    """Set the copied `columns` of the rows in `drift_batch(index)` up to key `%(hi)s` to
    the auth user's values, and keep what changed in `SYNCED`.

    The rows are reached by their location (a TID scan: the join by key took 1.9 s for
    48,000 users at a million, this 0.2 s), and only while they still hold the values the
    batch read: a row changed since is left alone (the caller writes it again from live
    values), so what is recorded as old is exactly what was replaced."""
    same = sql.SQL(" AND ").join(
        sql.SQL("x.{} IS NOT DISTINCT FROM d.{}").format(sql.Identifier(c.column), sql.Identifier(f"old_{i}"))
        for i, c in enumerate(columns)
    )
    return sql.SQL(
        "WITH upd AS (UPDATE {t} x SET {sets} FROM {d} d "
        "WHERE d.k <= %(hi)s AND x.ctid = ANY(ARRAY(SELECT row_id FROM {d} WHERE k <= %(hi)s)) "
        "AND x.ctid = d.row_id AND x.{k} = d.k AND {same}{guards} RETURNING d.row_id, d.k, {stored}) {keep}"
    ).format(
        t=spec.identifier(),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = d.{}").format(sql.Identifier(c.column), sql.Identifier(f"new_{i}"))
            for i, c in enumerate(columns)
        ),
        d=drift_batch(index),
        k=sql.Identifier(spec.key),
        same=same,
        guards=_guards(spec, columns, lambda i, c: sql.SQL("d.{}").format(sql.Identifier(f"new_{i}"))),
        stored=_stored(columns, "d"),
        keep=_keep_changes(spec, columns),
    )


def sync(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """Set the copied `columns` of users `%(ids)s` to the auth user's live values where any
    differs, and keep what changed in `SYNCED`: for the few users `sync_batch` left alone,
    and for writing users one by one. The old and new values come from the same statement
    (a locking CTE that joins the auth users once), so what is recorded is exactly what was
    replaced."""
    return sql.SQL(
        "WITH old AS (SELECT x.ctid AS row_id, x.{k} AS k, {olds} FROM {joined} "
        "WHERE {of_users} AND {any}{guards} FOR UPDATE OF x), "
        "upd AS (UPDATE {t} x SET {sets} FROM old WHERE x.ctid = old.row_id RETURNING old.row_id, old.k, {stored}) "
        "{keep}"
    ).format(
        of_users=_of_users(spec),
        guards=_guards(spec, columns, lambda i, c: c.auth_value()),
        stored=_stored(columns, "old"),
        k=sql.Identifier(spec.key),
        olds=sql.SQL(", ").join(
            sql.SQL("x.{c} AS {o}, {new} AS {n}").format(
                c=sql.Identifier(c.column),
                o=sql.Identifier(f"old_{i}"),
                new=c.auth_value(),
                n=sql.Identifier(f"new_{i}"),
            )
            for i, c in enumerate(columns)
        ),
        joined=_joined(spec),
        t=spec.identifier(),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = old.{}").format(sql.Identifier(c.column), sql.Identifier(f"new_{i}"))
            for i, c in enumerate(columns)
        ),
        any=_any_differs(columns),
        keep=_keep_changes(spec, columns),
    )


def left_in_batch(spec: TableSpec, index: int) -> sql.Composed:
    """The users with a row in `drift_batch(index)` up to `%(hi)s` that `SYNCED` has no
    change of (a unique value held by another row, a row changed since it was read)."""
    return sql.SQL(
        "SELECT DISTINCT d.k FROM {d} d WHERE d.k <= %(hi)s AND NOT EXISTS "
        "(SELECT 1 FROM {synced} s WHERE s.tbl = {tbl} AND s.row_id = d.row_id) ORDER BY 1"
    ).format(d=drift_batch(index), synced=SYNCED, tbl=sql.Literal(spec.qualified_name))


def still_drifted(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """Which of the live users `%(ids)s` still have a row here whose values differ."""
    return sql.SQL("SELECT DISTINCT * FROM ({}) d").format(drifted_keys(spec, columns, where=_of_users(spec)))


def batch_keys(index: int) -> sql.Composed:
    """The users of `drift_batch(index)` up to `%(hi)s` (for writing them one by one)."""
    return sql.SQL("SELECT DISTINCT k FROM {} WHERE k <= %(hi)s ORDER BY 1").format(drift_batch(index))


def synced_counts() -> sql.Composed:
    """Per table and column, how many values `SYNCED` holds; then (NULL, NULL, users)."""
    return sql.SQL(
        "SELECT tbl, col, count(*) FROM {s} GROUP BY tbl, col UNION ALL SELECT NULL, NULL, count(DISTINCT k) FROM {s}"
    ).format(s=SYNCED)


def synced_sample() -> sql.Composed:
    """The first `%(sample)s` changes in `SYNCED`: (user id, table, column, old, new)."""
    return sql.SQL("SELECT k, tbl, col, old, new FROM {} ORDER BY k, tbl, col LIMIT %(sample)s").format(SYNCED)


#: The audit event's users: those `SYNCED` changed and the blocked ones (`%s`, uuid[]).
SYNCED_EVENT_TARGETS = "ARRAY(SELECT k FROM pg_temp.eloity_synced UNION SELECT unnest(%s::uuid[]) ORDER BY 1)"


def synced_event_changes(columns: list[CopiedColumn]) -> sql.Composed:
    """The audit event's changes from `SYNCED`: {"public.users.email": [[user id, old,
    new], ...]} for each column with a change. (One jsonb_build_object over the known
    columns: jsonb_object_agg of large arrays takes seconds, docs/performance.md.)"""
    return sql.SQL("jsonb_strip_nulls(jsonb_build_object({}))").format(
        sql.SQL(", ").join(
            sql.SQL(
                "{name}, (SELECT jsonb_agg(jsonb_build_array(s.k::text, s.old, s.new) ORDER BY s.k) "
                "FROM {synced} s WHERE s.tbl = {tbl} AND s.col = {col})"
            ).format(
                name=sql.Literal(c.qualified),
                synced=SYNCED,
                tbl=sql.Literal(c.spec.qualified_name),
                col=sql.Literal(c.column),
            )
            for c in columns
        )
    )


def orphans(
    spec: TableSpec, *, action: str = "select", sample: int | None = None, withheld: list[str] | None = None
) -> sql.Composed:
    """App rows whose key matches no auth user (a soft-deleted auth user still exists, so
    its rows are never orphans). `action`: "count" them, "select" each as JSON (the first
    `sample` by key when given), or "delete" them, returning each as JSON; the `withheld`
    columns (secrets) are left out of the JSON."""
    missing_user = sql.SQL("NOT EXISTS (SELECT 1 FROM {auth} a WHERE a.id = x.{k})").format(
        auth=AUTH_USERS, k=sql.Identifier(spec.key)
    )
    row = sql.SQL("to_jsonb(x) - {}::text[]").format(sql.Literal(list(withheld or [])))
    if action == "delete":
        return sql.SQL("DELETE FROM {t} x WHERE {missing} RETURNING {row}").format(
            t=spec.identifier(), missing=missing_user, row=row
        )
    what = sql.SQL("count(*)") if action == "count" else row
    limit = (
        sql.SQL(" ORDER BY x.{} LIMIT {}").format(sql.Identifier(spec.key), sql.Literal(sample))
        if sample and action == "select"
        else sql.SQL("")
    )
    return sql.SQL("SELECT {what} FROM {t} x WHERE {missing}{limit}").format(
        what=what, t=spec.identifier(), missing=missing_user, limit=limit
    )


def rows_following_orphans(spec: TableSpec, schema: str, table: str, fk) -> sql.Composed:
    """How many rows of `schema.table` reference, through `fk`, an orphaned row of the
    spec's table (they would be deleted or changed with it, unrecorded)."""
    return sql.SQL(
        "SELECT count(*) FROM {r} r WHERE ({cols}) IN (SELECT {refs} FROM {t} x WHERE NOT EXISTS "
        "(SELECT 1 FROM {auth} a WHERE a.id = x.{k}))"
    ).format(
        r=sql.Identifier(schema, table),
        cols=sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in fk.columns),
        refs=sql.SQL(", ").join(sql.SQL("x.{}").format(sql.Identifier(c)) for c in fk.ref_columns),
        t=spec.identifier(),
        auth=AUTH_USERS,
        k=sql.Identifier(spec.key),
    )
