"""Auth user ids as people type them: in a search box, a URL, a command-line argument."""

from __future__ import annotations

import uuid


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in `value` (surrounding blanks ignored), or None when it is not one."""
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError, TypeError):
        return None


def clean_typed(text, *, limit: int = 320) -> str:
    """What someone typed, as something PostgreSQL accepts: no NUL bytes, trimmed, cut to
    `limit` characters (an email's maximum length: no id or email is longer)."""
    return str(text or "").replace("\x00", "").strip()[:limit]
