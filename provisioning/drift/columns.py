"""The app columns provisioning copies from the auth user: an auth column (`{ auth =
"email" }`) or a metadata key (`{ metadata = "full_name" }`), per the spec, where the live
table has the column. The key column is not one of them; a secret auth column never is, nor
an app column whose name looks secret (`users.password`)."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from provisioning.engine import catalog
from provisioning.engine.rows import SECRET_APP_COLUMN
from provisioning.spec import select_tables
from provisioning.spec.vocabulary import SECRET_AUTH_COLUMNS, AuthColumn, AuthMetadata, TableSpec


def withheld_columns(spec: TableSpec) -> list[str]:
    """The live columns of the spec's table that hold secrets."""
    return [c for c in catalog.columns(spec.schema, spec.name) if SECRET_APP_COLUMN.search(c)]


@dataclass(frozen=True)
class CopiedColumn:
    spec: TableSpec
    column: str
    value: AuthColumn | AuthMetadata
    data_type: str  # the live column's type without its length (catalog.Column.base_type), e.g. "text"
    unique: bool  # a unique index on this column alone

    @property
    def name(self) -> str:
        """`users.email`: how the CLI and the pages name it."""
        return f"{self.spec.name}.{self.column}"

    @property
    def qualified(self) -> str:
        return f"{self.spec.qualified_name}.{self.column}"

    def app_value(self, alias: str = "x") -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(self.column))

    def auth_value(self, alias: str = "u") -> sql.Composable:
        """The auth user's value, as the column's type (what provisioning would write)."""
        return sql.SQL("CAST({} AS {})").format(self.value.expression(alias), sql.SQL(self.data_type))

    def differs(self, x: str = "x", u: str = "u") -> sql.Composable:
        return sql.SQL("{} IS DISTINCT FROM {}").format(self.app_value(x), self.auth_value(u))


def copied_columns(
    tables: list[str] | tuple[str, ...] | None = None, columns: list[str] | tuple[str, ...] | None = None
) -> list[CopiedColumn]:
    """The copied columns of `tables` (all spec tables when None), limited to `columns`
    (`table.column` or `column`) when given. ValueError naming an unknown table or a column
    that is not copied from the auth user."""
    found = []
    for spec in select_tables(tables):
        live = catalog.columns(spec.schema, spec.name)
        if spec.key not in live:
            continue
        unique = {k.columns for k in catalog.unique_keys(spec.schema, spec.name)}
        for column, value in spec.values.items():
            if column == spec.key or column not in live or not isinstance(value, AuthColumn | AuthMetadata):
                continue
            if isinstance(value, AuthColumn) and value.column in SECRET_AUTH_COLUMNS:
                continue
            if SECRET_APP_COLUMN.search(column):
                # The app's value of a secret-looking column (a password the app itself
                # set, say) would show on the drifted list, the user's page, the sync's
                # audit event and its export: never compared, shown or synced.
                continue
            found.append(CopiedColumn(spec, column, value, live[column].base_type, (column,) in unique))
    if columns:
        wanted = set(columns)
        chosen = [c for c in found if c.name in wanted or c.column in wanted]
        named = {c.name for c in chosen} | {c.column for c in chosen}
        unknown = sorted(wanted - named)
        if unknown:
            offered = ", ".join(c.name for c in found) or "none"
            raise ValueError(f"not a column copied from the auth user: {', '.join(unknown)} (choose from {offered})")
        found = chosen
    return found


def by_table(columns: list[CopiedColumn]) -> dict[str, list[CopiedColumn]]:
    """The columns grouped per table, in spec order."""
    grouped: dict[str, list[CopiedColumn]] = {}
    for column in columns:
        grouped.setdefault(column.spec.name, []).append(column)
    return grouped
