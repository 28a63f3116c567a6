"""App-table rows as the pages show them: the columns the live catalog says a table has.

The models of the app tables declare only their key (a table's columns differ from one
project to the next: the Eloity migration's `public.users` has six, the richer shape
thirty). Every page that shows an app row reads it here, asking for the key and the
columns to show by name, never `SELECT *`: a column whose name looks secret (a password,
a seed phrase, a bank account) is never read, only named as withheld.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from django.db import connection
from psycopg import sql

from provisioning.engine import catalog
from provisioning.spec import SPEC
from provisioning.spec.vocabulary import TableSpec

#: App table columns that hold secrets (the real app's users.password, wallets.backup_seed,
#: profiles.bank_account_number): never shown, exported or kept in an audit event.
SECRET_APP_COLUMN = re.compile(
    r"password|passwd|secret|token|seed|private_key|bank_account|iban|ssn|api_?key|mnemonic|card_number|cvv"
    # Short words only as a whole part of the name (`pin`, not `shipping`).
    r"|(?:^|_)(?:pin|otp|salt|hash|totp)(?:$|_)",
    re.I,
)

#: What names a row for a person, first present and non-empty wins (then the key).
LABEL_COLUMNS = ("email", "username", "full_name", "name")

#: The columns an app-table list shows first, where the live table has them; the rest of
#: its columns follow, up to LIST_COLUMNS in all.
PREFERRED_LIST_COLUMNS = (
    "email",
    "username",
    "full_name",
    "name",
    "email_confirmed",
    "is_verified",
    "status",
    "role",
    "usdt_balance",
    "is_active",
    "is_frozen",
    "created_at",
)
LIST_COLUMNS = 6
#: Columns a list shows only when nothing else fills it: a row's own id says little to a person.
LAST_LIST_COLUMNS = ("updated_at", "id")

#: Text columns the app-table lists search, where the live table has them.
SEARCHED_COLUMNS = ("email", "username", "full_name", "name")


def is_secret(column: str) -> bool:
    return bool(SECRET_APP_COLUMN.search(column))


@dataclass(frozen=True)
class TableColumns:
    """One app table as the live catalog has it: does it exist, which columns a page may
    show (in the table's order, the key first), which it withholds."""

    schema: str
    name: str
    key: str
    exists: bool
    shown: tuple[str, ...]
    withheld: tuple[str, ...]
    types: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def has_key(self) -> bool:
        return self.key in self.types

    def list_columns(self, limit: int = LIST_COLUMNS) -> list[str]:
        """What a list of this table shows beside its key: the preferred columns the table
        has, in that order, then its other columns, `limit` in all."""
        others = [c for c in self.shown if c != self.key]
        chosen = [c for c in PREFERRED_LIST_COLUMNS if c in others]
        chosen += [c for c in others if c not in chosen and c not in LAST_LIST_COLUMNS]
        chosen += [c for c in LAST_LIST_COLUMNS if c in others]
        return chosen[:limit]

    def searched_columns(self) -> list[str]:
        return [c for c in SEARCHED_COLUMNS if c in self.shown and self.types[c] in ("text", "character varying")]


def table_columns(schema: str, name: str, key: str) -> TableColumns:
    """The live columns of `schema.name` split into shown and withheld (one catalog read)."""
    live = catalog.columns(schema, name)
    shown = [key] if key in live else []
    shown += [c for c in live if c != key and not is_secret(c)]
    return TableColumns(
        schema=schema,
        name=name,
        key=key,
        exists=bool(live),
        shown=tuple(shown),
        withheld=tuple(c for c in live if is_secret(c)),
        types={c: col.base_type for c, col in live.items()},
    )


def spec_columns(spec: TableSpec) -> TableColumns:
    return table_columns(spec.schema, spec.name, spec.key)


@dataclass(frozen=True)
class Row:
    """An app row as a page shows it: its shown columns by name, and the names of the
    columns it withholds."""

    table: TableColumns
    values: dict

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def name(self) -> str:
        """What names the row for a person (its email, username or name), or ""."""
        for column in LABEL_COLUMNS:
            value = self.values.get(column)
            if value not in (None, ""):
                return str(value)
        return ""

    @property
    def label(self) -> str:
        """The row's name, else its key."""
        return self.name or str(self.values.get(self.table.key, ""))

    @property
    def withheld(self) -> tuple[str, ...]:
        return self.table.withheld

    def items(self) -> list[tuple[str, object]]:
        return list(self.values.items())

    def __str__(self) -> str:
        return self.label


def quoted(*names: str) -> str:
    """Names as SQL text for an ORM RawSQL, each quoted as an identifier (an embedded quote
    doubled) and `%` doubled (RawSQL's text is run with parameters): a live column may be
    named anything."""
    connection.ensure_connection()
    return sql.Identifier(*names).as_string(connection.connection).replace("%", "%%")


def select_shown(table: TableColumns, user_ids: list[uuid.UUID]) -> sql.Composed:
    """`SELECT <shown columns> FROM <table> WHERE <key> = ANY('{ids}'::uuid[])`: names from
    the catalog, quoted as identifiers; the ids (UUIDs, never typed text) as a literal, so
    the statement runs without parameters and a `%` in a live column's name is no
    placeholder."""
    return sql.SQL("SELECT {columns} FROM {table} WHERE {key} = ANY({ids}::uuid[])").format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in table.shown),
        table=sql.Identifier(table.schema, table.name),
        key=sql.Identifier(table.key),
        ids=sql.Literal([str(u) for u in user_ids]),
    )


def rows_of(table: TableColumns, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """The rows of `table` keyed by the given auth user ids, one query; where a key has
    several rows (nothing makes `profiles.user_id` unique in the Eloity migration), the
    first read. Empty when the table or its key column does not exist."""
    found: dict[uuid.UUID, Row] = {}
    for row in every_row_of(table, user_ids):
        found.setdefault(row.values[table.key], row)
    return found


def every_row_of(table: TableColumns, user_ids: list[uuid.UUID]) -> list[Row]:
    """Every row of `table` whose key is one of `user_ids`, duplicates included (one query;
    none when the table or its key column does not exist)."""
    if not user_ids or not table.exists or not table.has_key:
        return []
    with connection.cursor() as cursor:
        cursor.execute(select_shown(table, list(user_ids)))
        return [Row(table, dict(zip(table.shown, values, strict=True))) for values in cursor.fetchall()]


def app_rows(user_id: uuid.UUID) -> dict[str, Row | None]:
    """The user's row in each spec table (its schema, name and key as the spec says), or
    None where missing, or where the table or its key column does not exist."""
    result: dict[str, Row | None] = {}
    for spec in SPEC:
        result[spec.name] = rows_of(spec_columns(spec), [user_id]).get(user_id)
    return result
