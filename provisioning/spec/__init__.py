"""What a provisioned user gets, per app table: the single source of truth.

`vocabulary` says how a spec is written, `loader` reads one from a TOML file: Eloity's
(`eloity.toml`, the default) or the file `PROVISIONING_SPEC` names. `SPEC` is the spec in
force, read once per process like the settings. A file that cannot be used leaves `SPEC`
empty and `SPEC_ERROR` saying why, naming the file and the entry: the commands refuse to
run (exit 2), `manage.py check` fails, and the web pages show it on the health page.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from provisioning.spec.loader import DEFAULT_SPEC_FILE, SpecFileError, load
from provisioning.spec.vocabulary import (
    AuthColumn,
    AuthMetadata,
    Const,
    JsonConst,
    Now,
    TableSpec,
    Value,
    literal,
)

__all__ = [
    "SPEC",
    "SPEC_ERROR",
    "SPEC_FILE",
    "TABLE_NAMES",
    "AuthColumn",
    "AuthMetadata",
    "Const",
    "JsonConst",
    "Now",
    "SpecFileError",
    "TableSpec",
    "Value",
    "literal",
    "qualified_name",
    "select_tables",
    "table_spec",
]

#: The spec file in force.
SPEC_FILE: Path = Path(getattr(settings, "PROVISIONING_SPEC", "") or DEFAULT_SPEC_FILE)
#: True for the built-in default: it tolerates the two Eloity shapes (a spec column the
#: table lacks is skipped and reported). A team's own file must name only live columns.
IS_DEFAULT_SPEC = SPEC_FILE.resolve() == DEFAULT_SPEC_FILE
try:
    SPEC: tuple[TableSpec, ...] = load(SPEC_FILE)
    SPEC_ERROR = ""
except SpecFileError as exc:
    SPEC = ()
    SPEC_ERROR = str(exc)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in SPEC)


def table_spec(name: str) -> TableSpec:
    """The spec of one table by name; KeyError for a table the spec does not have."""
    for spec in SPEC:
        if spec.name == name:
            return spec
    raise KeyError(name)


def qualified_name(table: str) -> str:
    """How pages name a table an event or a result names by its bare name: the spec's
    `schema.name` (`app.users` where the spec says so), else `public.<name>` (a table the
    spec no longer has); a name that is already qualified, or "*", stays as it is."""
    if "." in table or table == "*":
        return table
    for spec in SPEC:
        if spec.name == table:
            return spec.qualified_name
    return f"public.{table}"


def select_tables(names: list[str] | tuple[str, ...] | None) -> tuple[TableSpec, ...]:
    """The specs for `names` in spec order (all when None). ValueError on an unknown name."""
    if not names:
        return SPEC
    unknown = sorted(set(names) - set(TABLE_NAMES))
    if unknown:
        raise ValueError(f"unknown table {', '.join(unknown)} (choose from {', '.join(TABLE_NAMES)})")
    return tuple(spec for spec in SPEC if spec.name in names)
