"""Auth user ids as people type them: in a search box, a URL, a command-line argument."""

from __future__ import annotations

import uuid


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in `value` (surrounding blanks ignored), or None when it is not one."""
    try:
        return uuid.UUID(str(value).strip())
    except (ValueError, AttributeError, TypeError):
        return None
