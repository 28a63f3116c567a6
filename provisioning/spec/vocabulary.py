"""The spec's vocabulary: a table to provision (`TableSpec`) and the value each of its
columns gets (`Value`: a literal, JSON, `now()`, an auth user column or a metadata key).

Each value knows its SQL twice: over the auth user row `u` in provisioning's set-based
statements (`expression`), and over the trigger's `NEW` row in the generated sign-up
function (`trigger_expression`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

#: auth.users' token columns, and every column of it that holds a secret: never copied
#: by a spec's value, compared, shown or synced.
AUTH_TOKEN_COLUMNS = (
    "confirmation_token",
    "recovery_token",
    "email_change_token_new",
    "email_change_token_current",
    "phone_change_token",
    "reauthentication_token",
)
SECRET_AUTH_COLUMNS = frozenset({"encrypted_password", *AUTH_TOKEN_COLUMNS})


def literal(value: Any) -> sql.Composable:
    # Statements always run with parameters, and psycopg then reads `%` as a placeholder
    # marker even inside a quoted literal: double it, and psycopg turns it back into `%`.
    if isinstance(value, str):
        value = value.replace("%", "%%")
    return sql.Literal(value)


class Value:
    """A value provisioning writes to one column, as a SQL expression over auth user `u`."""

    #: True when the value comes from the auth user and may therefore be null.
    from_auth_user = False

    def expression(self, alias: str = "u") -> sql.Composable:
        """The value as SQL; `alias` names the auth user row it may read from."""
        raise NotImplementedError

    def new_row(self) -> sql.Composable:
        """The value as SQL inside the sign-up trigger, over the new auth user `NEW`.
        Literals are not %-escaped there: the trigger's body is not run with parameters."""
        raise NotImplementedError

    def trigger_expression(self, names: Callable[[str], str] | None = None) -> str:
        """`new_row()` as text; `names` quotes a column name the way the generated
        function does (only where needed), when given."""
        return self.new_row().as_string()

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Const(Value):
    value: Any

    def expression(self, alias: str = "u") -> sql.Composable:
        return literal(self.value)

    def new_row(self) -> sql.Composable:
        return sql.Literal(self.value)

    def describe(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class JsonConst(Value):
    value: Any

    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("{}::jsonb").format(literal(json.dumps(self.value)))

    def new_row(self) -> sql.Composable:
        return sql.SQL("{}::jsonb").format(sql.Literal(json.dumps(self.value)))

    def describe(self) -> str:
        return f"'{json.dumps(self.value)}'::jsonb"


@dataclass(frozen=True)
class Now(Value):
    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("now()")

    def new_row(self) -> sql.Composable:
        return sql.SQL("now()")

    def describe(self) -> str:
        return "now()"


@dataclass(frozen=True)
class AuthColumn(Value):
    """A column of the auth user, such as its `id` or `email`."""

    column: str
    from_auth_user = True

    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(self.column))

    def new_row(self) -> sql.Composable:
        return sql.SQL("NEW.{}").format(sql.Identifier(self.column))

    def trigger_expression(self, names: Callable[[str], str] | None = None) -> str:
        return f"NEW.{names(self.column)}" if names is not None else super().trigger_expression()

    def describe(self) -> str:
        return f"auth.users.{self.column}"


@dataclass(frozen=True)
class AuthMetadata(Value):
    """A key of the auth user's `raw_user_meta_data`, such as `full_name`."""

    key: str
    from_auth_user = True

    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("{}.raw_user_meta_data ->> {}").format(sql.Identifier(alias), literal(self.key))

    def new_row(self) -> sql.Composable:
        return sql.SQL("(NEW.raw_user_meta_data ->> {})").format(sql.Literal(self.key))

    def describe(self) -> str:
        return f"raw_user_meta_data->>'{self.key}'"


@dataclass(frozen=True)
class TableSpec:
    name: str
    label: str
    key: str
    values: dict[str, Value] = field(default_factory=dict)
    schema: str = "public"

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)
