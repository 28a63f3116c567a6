"""The SQL of the drift report, the value sync and the orphan removal, composed with
psycopg.sql over the copied columns (`columns.CopiedColumn`). App rows are aliased `x`,
auth users `u`. Set-based: one statement per table per batch."""

from __future__ import annotations

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


def drift_counts(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """One row: per column, the live users' rows whose value differs from the auth user's
    (NULL-aware, case-sensitive), then the rows where any does. One pass over the table."""
    return sql.SQL("SELECT {each}, count(*) FILTER (WHERE {any}) FROM {joined}").format(
        each=sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(c.differs()) for c in columns),
        any=_any_differs(columns),
        joined=_joined(spec),
    )


def drifted_keys(spec: TableSpec, columns: list[CopiedColumn], *, after: str | None = None) -> sql.Composed:
    """The keys (auth user ids) of live users whose row differs, as a subquery; `after`:
    only ids above it (a keyset page)."""
    bound = (
        sql.SQL(" AND x.{} > {}::uuid").format(sql.Identifier(spec.key), sql.Literal(after)) if after else sql.SQL("")
    )
    return sql.SQL("SELECT x.{k} FROM {joined} WHERE {any}{bound}").format(
        k=sql.Identifier(spec.key), joined=_joined(spec), any=_any_differs(columns), bound=bound
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


def next_drifted(tables: list[tuple[TableSpec, list[CopiedColumn]]]) -> sql.Composed:
    """The next `%(limit)s` drifted user ids above `%(after)s`, in id order (a batch of
    "sync all drifted").

    The drifted users are found first (a hash join, both tables bounded by the cursor), then
    ordered: asked for in id order directly, the planner walks both primary keys in step
    and reads auth.users row by row (6.4 s for the first batch at a million users, 0.9 s this
    way, measured with bench/adhoc/sync.py)."""
    union = sql.SQL(" UNION ").join(
        sql.SQL("{} AND x.{} > %(after)s AND u.id > %(after)s").format(
            drifted_keys(spec, columns), sql.Identifier(spec.key)
        )
        for spec, columns in tables
    )
    return sql.SQL("WITH d(k) AS MATERIALIZED ({}) SELECT k FROM d ORDER BY k LIMIT %(limit)s").format(union)


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


def sync(spec: TableSpec, columns: list[CopiedColumn]) -> sql.Composed:
    """Set the copied `columns` of users `%(ids)s` to the auth user's values where any
    differs. Returns per row the key, then each column's old and new value (text) and
    whether it changed. The old and new values come from the same statement (a locking
    CTE that joins the auth users once), so what is recorded is exactly what was replaced.
    A row whose new value on a unique column another row already holds is left alone (the
    caller reports it), so one collision does not fail the statement. (Joining auth.users
    again in the UPDATE took 2.2-2.4 s for 48,000 users at a million; carried, 1.4-1.5 s.)"""
    guards = [
        sql.SQL(" AND NOT EXISTS (SELECT 1 FROM {t} y WHERE y.{c} = {new} AND y.{k} IS DISTINCT FROM x.{k})").format(
            t=spec.identifier(), c=sql.Identifier(c.column), new=c.auth_value(), k=sql.Identifier(spec.key)
        )
        for c in columns
        if c.unique
    ]
    return sql.SQL(
        "WITH old AS (SELECT x.ctid AS row_id, x.{k} AS k, {olds} FROM {joined} "
        "WHERE x.{k} = ANY(%(ids)s) AND u.id = ANY(%(ids)s) AND {any}{guards} FOR UPDATE OF x) "
        "UPDATE {t} x SET {sets} FROM old WHERE x.ctid = old.row_id "
        "RETURNING x.{k}, {pairs}"
    ).format(
        guards=sql.Composed(guards),
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
        pairs=sql.SQL(", ").join(
            sql.SQL("old.{o}::text, x.{c}::text, old.{o} IS DISTINCT FROM x.{c}").format(
                o=sql.Identifier(f"old_{i}"), c=sql.Identifier(c.column)
            )
            for i, c in enumerate(columns)
        ),
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
