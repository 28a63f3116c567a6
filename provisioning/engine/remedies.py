"""What can be done about a row provisioning cannot write, in words shared by the user's
page (`selectors.next_steps`) and the health page's advice (`diagnostics/reasons.py`)."""

from __future__ import annotations

from provisioning.engine.plans import TablePlan
from provisioning.engine.triggergen import quote_ident
from provisioning.spec import AuthColumn, AuthMetadata, Value

#: What to ask a person for when an auth column a NOT NULL column copies is empty.
_ASKED = {"email": "an email address", "phone": "a phone number"}


def asked_for(value: Value) -> str:
    """What to ask the person for, so that `value` is no longer empty: "an email address"
    for auth.users.email, "their full_name" for a metadata key."""
    if isinstance(value, AuthColumn):
        return _ASKED.get(value.column, f"their {value.column.replace('_', ' ')}")
    if isinstance(value, AuthMetadata):
        return f"their {value.key.replace('_', ' ')}"
    return value.describe()


def drop_not_null(plan: TablePlan, column: str) -> str:
    """`ALTER TABLE public.users ALTER COLUMN email DROP NOT NULL;` (names quoted where they
    need it), for an administrator to review: the app may rely on the column being set."""
    table = quote_ident(plan.spec.schema, plan.spec.name)
    return f"ALTER TABLE {table} ALTER COLUMN {quote_ident(column)} DROP NOT NULL;"
