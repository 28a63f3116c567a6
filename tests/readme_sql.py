"""The README's SQL for the dashboard's two database roles, as tests run it: read from the
README itself, so the README and the tests can never disagree."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
README_OWNER = "eloity_admin_owner"
README_RUNTIME = "eloity_admin"


def roles_sql(owner: str, runtime: str, password: str) -> str:
    """The SQL block of the README's "Connecting to a real Supabase project", with the two
    roles renamed (roles are cluster-wide: each run uses its own) and a real password. The
    schema keeps its name `eloity_admin`: it is written after SCHEMA or before a dot."""
    section = README.read_text().split("## Connecting to a real Supabase project", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    block = re.sub(rf"\b{README_OWNER}\b", owner, block)
    block = re.sub(rf"(?<!SCHEMA )\b{README_RUNTIME}\b(?![.\w])", runtime, block)
    return re.sub(r"PASSWORD '<[^>]*>'", f"PASSWORD '{password}'", block)


def runtime_role_sql(runtime: str) -> str:
    """Only the README's statements about the runtime role (no owner, no schema, no default
    privileges), for a database whose dashboard tables already exist."""
    owner = "readme_owner_placeholder"
    statements = roles_sql(owner, runtime, "unused").split(";")
    kept = [s for s in statements if owner not in s and "CREATE SCHEMA" not in s and s.strip()]
    return ";".join(kept) + ";"
