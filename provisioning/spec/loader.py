"""Reading a spec file (TOML, the standard library's `tomllib`): the default is Eloity's,
`provisioning/spec/eloity.toml`; `PROVISIONING_SPEC` names another.

Every mistake is one message that names the file and the entry: bad TOML (with its line),
an unknown value kind, a missing key column, the `auth` schema or the dashboard's own schema
as a target, a secret column of auth.users as a value (the password hash, a token), a table
named twice. `engine.plans.spec_file_problems` adds what only the live database knows: a table
or a column the file names that the database lacks.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

from provisioning.spec.vocabulary import (
    SECRET_AUTH_COLUMNS,
    AuthColumn,
    AuthMetadata,
    Const,
    JsonConst,
    Now,
    TableSpec,
    Value,
)

DEFAULT_SPEC_FILE = Path(__file__).resolve().parent / "eloity.toml"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}\Z")
_KINDS = 'a plain value, { json = ... }, { now = true }, { auth = "column" } or { metadata = "key" }'


class SpecFileError(ValueError):
    """The spec file cannot be used; the message names the file and the entry."""


def load(path: str | Path) -> tuple[TableSpec, ...]:
    """The tables of the spec file at `path`, in file order. SpecFileError on any mistake."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecFileError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise SpecFileError(f"{path}: not UTF-8 text") from exc
    unknown = sorted(set(data) - {"table"})
    if unknown:
        raise SpecFileError(f"{path}: unknown top-level entry {unknown[0]!r} (only [[table]] entries)")
    tables = data.get("table")
    if not isinstance(tables, list) or not tables:
        raise SpecFileError(f"{path}: no [[table]] entries")
    specs = [_table(path, i, entry) for i, entry in enumerate(tables, start=1)]
    seen: set[str] = set()
    for spec in specs:
        if spec.qualified_name in seen:
            raise SpecFileError(f"{path}: table {spec.qualified_name} is named twice")
        seen.add(spec.qualified_name)
    return tuple(specs)


def _table(path: Path, number: int, entry: Any) -> TableSpec:
    where = f"{path}: [[table]] #{number}"
    if not isinstance(entry, dict):
        raise SpecFileError(f"{where}: not a table")
    unknown = sorted(set(entry) - {"name", "schema", "label", "key", "values"})
    if unknown:
        raise SpecFileError(f"{where}: unknown entry {unknown[0]!r} (name, schema, label, key, values)")
    name = _identifier(where, entry, "name")
    where = f"{path}: table {name!r}"
    schema = _identifier(where, entry, "schema", default="public")
    if schema == "auth":
        raise SpecFileError(f"{where}: schema 'auth' belongs to Supabase Auth and is never written")
    if schema == _dashboard_schema():
        raise SpecFileError(f"{where}: schema {schema!r} holds the dashboard's own tables and is never provisioned")
    key = _identifier(where, entry, "key")
    label = entry.get("label", name)
    if not isinstance(label, str) or not label.strip():
        raise SpecFileError(f"{where}: label must be a non-empty string")
    values = entry.get("values")
    if not isinstance(values, dict) or not values:
        raise SpecFileError(f"{where}: no [table.values]")
    parsed = {column: _value(f"{where}, column {column!r}", column, raw) for column, raw in values.items()}
    if key not in parsed:
        raise SpecFileError(f'{where}: the key column {key!r} has no value (give it {{ auth = "id" }})')
    return TableSpec(name=name, label=label.strip(), key=key, values=parsed, schema=schema)


def _dashboard_schema() -> str:
    """The schema of the dashboard's own tables (Django's, the audit log): never a spec's."""
    from django.conf import settings

    return getattr(settings, "DJANGO_SCHEMA", "") or "eloity_admin"


def _identifier(where: str, entry: dict, field: str, default: str | None = None) -> str:
    value = entry.get(field, default)
    if value is None:
        raise SpecFileError(f"{where}: missing {field!r}")
    if not isinstance(value, str) or not _NAME.match(value):
        raise SpecFileError(f"{where}: {field} {value!r} is not a plain SQL name")
    return value


def _value(where: str, column: str, raw: Any) -> Value:
    if not _NAME.match(column):
        raise SpecFileError(f"{where}: not a plain SQL column name")
    if isinstance(raw, dict):
        if len(raw) != 1:
            raise SpecFileError(f"{where}: a value is one of {_KINDS}")
        ((kind, argument),) = raw.items()
        if kind == "json":
            return JsonConst(argument)
        if kind == "now" and argument is True:
            return Now()
        if kind in ("auth", "metadata"):
            if not isinstance(argument, str) or not argument:
                raise SpecFileError(f"{where}: {kind} takes a name as a string")
            if kind == "auth" and not _NAME.match(argument):
                raise SpecFileError(f"{where}: {argument!r} is not a column name of auth.users")
            if kind == "auth" and argument.lower() in SECRET_AUTH_COLUMNS:
                raise SpecFileError(
                    f"{where}: auth.users.{argument} holds a secret (a password hash or a token) and is never copied"
                )
            return AuthColumn(argument) if kind == "auth" else AuthMetadata(argument)
        raise SpecFileError(f"{where}: unknown value kind {kind!r}; a value is one of {_KINDS}")
    if isinstance(raw, list):
        raise SpecFileError(f"{where}: a list is written as {{ json = [...] }}")
    if isinstance(raw, (dt.date, dt.time)):
        return Const(raw.isoformat())
    return Const(raw)
