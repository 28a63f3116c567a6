"""What a provisioned user gets, per app table: the single source of truth.

The default is what the Eloity `handle_new_user()` trigger writes (shared/guide/domain.md)
for the columns the Eloity tables have. The real trigger also wrote `sol_balance`,
`kyc_verified`, `kyc_level` and `kyc_documents` to `public.wallets`, which has none of
them: that drift is what broke sign-ups, so those columns are not part of the spec.
Columns the trigger leaves null are not listed.

Before anything is written, each table's spec is checked against the live catalog
(`plans.py`): a column the table lacks is skipped and reported, never sent blindly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql


def _literal(value: Any) -> sql.Composable:
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

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Const(Value):
    value: Any

    def expression(self, alias: str = "u") -> sql.Composable:
        return _literal(self.value)

    def describe(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class JsonConst(Value):
    value: Any

    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("{}::jsonb").format(_literal(json.dumps(self.value)))

    def describe(self) -> str:
        return f"'{json.dumps(self.value)}'::jsonb"


@dataclass(frozen=True)
class Now(Value):
    def expression(self, alias: str = "u") -> sql.Composable:
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

    def describe(self) -> str:
        return f"auth.users.{self.column}"


@dataclass(frozen=True)
class AuthMetadata(Value):
    """A key of the auth user's `raw_user_meta_data`, such as `full_name`."""

    key: str
    from_auth_user = True

    def expression(self, alias: str = "u") -> sql.Composable:
        return sql.SQL("{}.raw_user_meta_data ->> {}").format(sql.Identifier(alias), _literal(self.key))

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


_ID = AuthColumn("id")

USERS = TableSpec(
    name="users",
    label="app user",
    key="id",
    values={
        "id": _ID,
        "email": AuthColumn("email"),
        "is_verified": Const(False),
        "points": Const(0),
        "level": Const("bronze"),
        "role": Const("user"),
        "reputation": Const(0),
        "followers_count": Const(0),
        "following_count": Const(0),
        "posts_count": Const(0),
        "profile_views": Const(0),
        "is_online": Const(False),
        "profile_visibility": Const("public"),
        "allow_direct_messages": Const(True),
        "allow_notifications": Const(True),
        "preferred_currency": Const("USDT"),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

PROFILES = TableSpec(
    name="profiles",
    label="profile",
    key="user_id",
    values={
        "user_id": _ID,
        "role": Const("user"),
        "status": Const("active"),
        "preferences": JsonConst({}),
        "is_verified": Const(False),
        "points": Const(0),
        "level": Const("bronze"),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

WALLETS = TableSpec(
    name="wallets",
    label="wallet",
    key="user_id",
    values={
        "user_id": _ID,
        "btc_balance": Const(0),
        "eth_balance": Const(0),
        "usdt_balance": Const(0),
        "soft_points_balance": Const(0),
        "created_at": Now(),
        "updated_at": Now(),
    },
)

#: The app tables in the order provisioning writes them (and takes their locks).
SPEC: tuple[TableSpec, ...] = (USERS, PROFILES, WALLETS)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in SPEC)


def table_spec(name: str) -> TableSpec:
    """The spec of one app table by name; KeyError for an unknown table."""
    for spec in SPEC:
        if spec.name == name:
            return spec
    raise KeyError(name)


def select_tables(names: list[str] | tuple[str, ...] | None) -> tuple[TableSpec, ...]:
    """The specs for `names` in spec order (all when None). ValueError on an unknown name."""
    if not names:
        return SPEC
    unknown = sorted(set(names) - set(TABLE_NAMES))
    if unknown:
        raise ValueError(f"unknown table {', '.join(unknown)} (choose from {', '.join(TABLE_NAMES)})")
    return tuple(spec for spec in SPEC if spec.name in names)
