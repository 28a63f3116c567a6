"""Everything the user's page shows of the account, read in one go (six queries at most)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from provisioning.account import selectors
from provisioning.account.catalog import auth_columns
from provisioning.account.timeline import Timeline, timeline


@dataclass
class Account:
    summary: selectors.Summary | None
    identities: selectors.Section
    sessions: selectors.Section
    factors: selectors.Section
    timeline: Timeline


def account(user_id: uuid.UUID, *, kind: str = "", page=1) -> Account:
    """The account of `user_id` as the page shows it: read-only, never a secret column."""
    columns = auth_columns()
    identities = selectors.sign_in_methods(user_id, columns)
    sessions = selectors.sessions(user_id, columns)
    factors = selectors.mfa_factors(user_id, columns)
    return Account(
        summary=selectors.summary(user_id, columns, identities, factors, sessions),
        identities=identities,
        sessions=sessions,
        factors=factors,
        timeline=timeline(user_id, columns, kind=kind, page=page),
    )
