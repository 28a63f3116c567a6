"""Reads of the live schema: columns, unique keys, triggers. Never trusts the models."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    not_null: bool
    has_default: bool
    generated: bool

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
