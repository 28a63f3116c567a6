"""What a provisioned user gets, per app table: the single source of truth.

`vocabulary` says how a spec is written, `eloity` is the default one; `SPEC` is the spec
in force, in the order provisioning writes the tables (and takes their locks).
"""

from __future__ import annotations

from provisioning.spec.eloity import ELOITY
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
    "TABLE_NAMES",
    "AuthColumn",
    "AuthMetadata",
    "Const",
    "JsonConst",
    "Now",
    "TableSpec",
    "Value",
    "literal",
    "select_tables",
]

SPEC: tuple[TableSpec, ...] = ELOITY
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in SPEC)


def select_tables(names: list[str] | tuple[str, ...] | None) -> tuple[TableSpec, ...]:
    """The specs for `names` in spec order (all when None). ValueError on an unknown name."""
    if not names:
        return SPEC
    unknown = sorted(set(names) - set(TABLE_NAMES))
    if unknown:
        raise ValueError(f"unknown table {', '.join(unknown)} (choose from {', '.join(TABLE_NAMES)})")
    return tuple(spec for spec in SPEC if spec.name in names)
