"""Reads of the live schema: columns, unique keys, foreign keys, triggers. Never trusts the
models."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection

_TYPMOD = re.compile(r"\(\d+(?:\s*,\s*\d+)?\)")


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    not_null: bool
    has_default: bool
    generated: bool

    @property
    def base_type(self) -> str:
        """The type without its length or precision (`character varying`, `numeric`): an
        explicit cast to `varchar(n)` cuts a longer value silently, where an assignment
        raises."""
        return _TYPMOD.sub("", self.data_type)

    @property
    def required(self) -> bool:
        """NOT NULL with no default: an INSERT must give it a value."""
        return self.not_null and not self.has_default and not self.generated


def table_exists(schema: str, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL", [schema, table])
        return cursor.fetchone()[0]


def columns(schema: str, table: str) -> dict[str, Column]:
    """The live columns of `schema.table`, by name (empty when the table does not exist)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT a.attname,
                   format_type(a.atttypid, a.atttypmod),
                   a.attnotnull,
                   a.atthasdef OR a.attidentity <> '',
                   a.attgenerated <> ''
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            [schema, table],
        )
        return {row[0]: Column(*row) for row in cursor.fetchall()}


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of a table: `columns` reference `ref_schema.ref_table(ref_columns)`."""

    name: str
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str  # a (no action), r (restrict), c (cascade), n (set null), d (set default)

    @property
    def references(self) -> str:
        return f"{self.ref_schema}.{self.ref_table}"


def foreign_keys(schema: str, table: str) -> list[ForeignKey]:
    """The foreign keys declared on `schema.table` (pg_constraint), columns in key order."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT con.conname,
                   array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
                   rn.nspname, rc.relname,
                   array(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o),
                   con.confdeltype::text
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class rc ON rc.oid = con.confrelid
            JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE con.contype = 'f' AND n.nspname = %s AND c.relname = %s
            ORDER BY con.conname
            """,
            [schema, table],
        )
        return [
            ForeignKey(name, tuple(cols), ref_schema, ref_table, tuple(ref_cols), on_delete)
            for name, cols, ref_schema, ref_table, ref_cols, on_delete in cursor.fetchall()
        ]


def foreign_keys_to(schema: str, table: str, *, same_schema: bool = False) -> list[tuple[str, str, ForeignKey]]:
    """Foreign keys of other tables (outside `schema`, or anywhere with `same_schema`) that
    reference `schema.table`: (referencing schema, referencing table, key)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname, c.relname FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class rc ON rc.oid = con.confrelid
            JOIN pg_namespace rn ON rn.oid = rc.relnamespace
            WHERE con.contype = 'f' AND rn.nspname = %s AND rc.relname = %s AND (%s OR n.nspname <> %s)
            GROUP BY 1, 2 ORDER BY 1, 2
            """,
            [schema, table, same_schema, schema],
        )
        tables = cursor.fetchall()
    return [
        (ref_schema, ref_table, fk)
        for ref_schema, ref_table in tables
        for fk in foreign_keys(ref_schema, ref_table)
        if fk.ref_schema == schema and fk.ref_table == table
    ]


@dataclass(frozen=True)
class CheckConstraint:
    """A CHECK constraint: its name, its boolean expression over the table's columns, and
    the columns that expression reads."""

    name: str
    expression: str
    columns: tuple[str, ...]


def check_constraints(schema: str, table: str) -> list[CheckConstraint]:
    """The CHECK constraints of `schema.table` (NOT NULL is not one), by name."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT con.conname, pg_get_expr(con.conbin, con.conrelid),
                   array(SELECT a.attname FROM unnest(con.conkey) k(n)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY a.attnum)
            FROM pg_constraint con
            JOIN pg_class c ON c.oid = con.conrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE con.contype = 'c' AND n.nspname = %s AND c.relname = %s
            ORDER BY con.conname
            """,
            [schema, table],
        )
        return [CheckConstraint(name, expression, tuple(cols)) for name, expression, cols in cursor.fetchall()]


@dataclass(frozen=True)
class UniqueKey:
    name: str
    columns: tuple[str, ...]


def unique_keys(schema: str, table: str) -> list[UniqueKey]:
    """Unique indexes (and so primary keys and unique constraints) usable by ON CONFLICT.

    Partial and expression indexes are left out: a plain ON CONFLICT cannot rely on them.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ic.relname,
                   array_agg(a.attname ORDER BY k.ord)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class ic ON ic.oid = i.indexrelid
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE n.nspname = %s AND c.relname = %s AND i.indisunique
              AND i.indpred IS NULL AND i.indexprs IS NULL
            GROUP BY ic.relname
            ORDER BY ic.relname
            """,
            [schema, table],
        )
        return [UniqueKey(name, tuple(cols)) for name, cols in cursor.fetchall()]


# --- Diagnostics: triggers, functions, indexes ----------------------------------------------

#: pg_trigger.tgenabled values under which a trigger fires for an ordinary session.
FIRING_STATES = {"O": "enabled", "A": "enabled always"}
TRIGGER_STATES = {"O": "enabled", "A": "enabled always", "D": "disabled", "R": "enabled for replicas only"}


@dataclass(frozen=True)
class Trigger:
    name: str
    function_schema: str
    function_name: str
    enabled: str  # pg_trigger.tgenabled: O, A, D or R
    for_each_row: bool
    before: bool
    on_insert: bool
    definition: str
    on_update: bool = False

    @property
    def fires(self) -> bool:
        """True when the trigger fires for an ordinary session (not disabled, not replica-only)."""
        return self.enabled in FIRING_STATES

    @property
    def state(self) -> str:
        return TRIGGER_STATES.get(self.enabled, f"tgenabled={self.enabled}")

    @property
    def function(self) -> str:
        return f"{self.function_schema}.{self.function_name}"


def triggers(schema: str, table: str) -> list[Trigger]:
    """The user-defined triggers on `schema.table` (not constraint triggers), by name.

    Empty when the table does not exist.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.tgname, pn.nspname, p.proname, t.tgenabled,
                   (t.tgtype & 1) <> 0, (t.tgtype & 2) <> 0, (t.tgtype & 4) <> 0,
                   pg_get_triggerdef(t.oid), (t.tgtype & 16) <> 0
            FROM pg_trigger t
            JOIN pg_class c ON c.oid = t.tgrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_proc p ON p.oid = t.tgfoid
            JOIN pg_namespace pn ON pn.oid = p.pronamespace
            WHERE n.nspname = %s AND c.relname = %s AND NOT t.tgisinternal
            ORDER BY t.tgname
            """,
            [schema, table],
        )
        return [Trigger(*row) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    security_definer: bool
    config: tuple[str, ...]  # proconfig, e.g. ("search_path=\"\"",)
    returns_trigger: bool
    definition: str
    owner: str = ""

    @property
    def sets_search_path(self) -> bool:
        return any(item.startswith("search_path=") for item in self.config)


def function(schema: str, name: str) -> Function | None:
    """The argument-less function `schema.name()` with its full definition (pg_get_functiondef),
    or None when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT n.nspname, p.proname, p.prosecdef, coalesce(p.proconfig, '{}'),
                   p.prorettype = 'trigger'::regtype, pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner)
            FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = %s AND p.proname = %s AND p.pronargs = 0 AND p.prokind = 'f'
            """,
            [schema, name],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Function(row[0], row[1], row[2], tuple(row[3]), row[4], row[5], row[6])


def column_type(schema: str, table: str, column: str) -> str | None:
    """The SQL type of one live column (format_type, e.g. `uuid`, `text`), or None."""
    live = columns(schema, table).get(column)
    return live.data_type if live else None


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str | None, ...]  # None for an expression
    unique: bool
    partial: bool
    valid: bool
    definition: str

    @property
    def leading_column(self) -> str | None:
        return self.columns[0] if self.columns else None


def indexes(schema: str, table: str) -> list[Index]:
    """Every index on `schema.table`, with its columns in order (None for an expression),
    whether it is unique, partial, and valid (a failed CREATE INDEX CONCURRENTLY leaves an
    invalid index that the planner never uses)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT ic.relname,
                   array_agg(a.attname ORDER BY k.ord),
                   i.indisunique,
                   i.indpred IS NOT NULL,
                   i.indisvalid AND i.indisready,
                   pg_get_indexdef(i.indexrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_class ic ON ic.oid = i.indexrelid
            CROSS JOIN LATERAL unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, ord)
            LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum AND k.attnum > 0
            WHERE n.nspname = %s AND c.relname = %s
            GROUP BY ic.relname, i.indisunique, i.indpred, i.indisvalid, i.indisready, i.indexrelid
            ORDER BY ic.relname
            """,
            [schema, table],
        )
        return [Index(name, tuple(cols), unique, partial, valid, d) for name, cols, unique, partial, valid, d in cursor]


def key_indexed(keys: list[tuple[str, str, str]]) -> bool:
    """Whether each (schema, table, column) has a valid, non-partial index leading with
    that column (False for a table or column that does not exist). One query."""
    if not keys:
        return True
    condition = """EXISTS (SELECT 1 FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))
          AND a.attname = %s AND i.indisvalid AND i.indisready AND i.indpred IS NULL)"""
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + " AND ".join([condition] * len(keys)), [v for key in keys for v in key])
        return bool(cursor.fetchone()[0])


def schemas_with_table(table: str) -> list[str]:
    """The schemas holding a table (or view) named `table`, system schemas left out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%' "
            "ORDER BY n.nspname",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def tables(schema: str) -> list[str]:
    """The names of the ordinary and partitioned tables (and views) in `schema`."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname
            """,
            [schema],
        )
        return [row[0] for row in cursor.fetchall()]
