"""Failures grouped by table and reason, each with its count and a few of its users: what
every report starts with (CLI text, --json, job page, audit event page), so that a rare
reason is never hidden behind a common one at the end of a capped list.

`FailureGroups` adds up a run's failures as they come (every one counted, a few users kept
per group); `groups_of_items` groups one audit event's `not_provisioned` list;
`groups_of_run` and `not_provisioned_of_run` read a run's audit events in SQL (a job's
batches share its run id).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from psycopg import sql

from provisioning.models import AuditEvent
from provisioning.spec import qualified_name

#: How many users a group names.
USERS_PER_GROUP = 5
#: How many distinct (table, reason) groups a report keeps. A reason that carries a value
#: (a trigger's message naming the row) makes one group per user; past this many, the rest
#: are counted together, never dropped.
MAX_GROUPS = 100
OTHER_REASONS = "other reasons (more distinct reasons than a report lists)"


@dataclass
class FailureGroup:
    table: str  # a spec table name, "public.users" for a sync, "*" for every table
    reason: str
    count: int = 0
    user_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def table_label(self) -> str:
        if self.table == "*":
            return "every table"
        return qualified_name(self.table)

    @property
    def more(self) -> int:
        """How many of its users the group does not name."""
        return max(0, self.count - len(self.user_ids))

    def as_dict(self) -> dict:
        return {
            "table": self.table,
            "reason": self.reason,
            "count": self.count,
            "user_ids": [str(u) for u in self.user_ids],
        }


class FailureGroups:
    """A run's failures by (table, reason): every failure counted, a few users kept each."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], FailureGroup] = {}

    def add(self, table: str, reason: str, user_ids: Iterable, count: int | None = None) -> None:
        """Count `count` failures (default: one per user) of `table` for `reason`."""
        ids = list(user_ids)
        key = (table, reason)
        if key not in self._groups and len(self._groups) >= MAX_GROUPS:
            key = (table, OTHER_REASONS)
        group = self._groups.setdefault(key, FailureGroup(*key))
        group.count += len(ids) if count is None else count
        room = USERS_PER_GROUP - len(group.user_ids)
        if room > 0:
            group.user_ids += [_as_uuid(u) for u in ids[:room]]

    def groups(self) -> list[FailureGroup]:
        return ordered(self._groups.values())

    def __bool__(self) -> bool:
        return bool(self._groups)


class ReportedRun:
    """What the result of a provisioning run and of a sync share: their failures by table
    and reason, and their outcome in the audit log's words (`AuditEvent.Outcome`). The
    result has `dry_run`, `ok` and `failures` (a FailureGroups)."""

    @property
    def failure_groups(self) -> list[FailureGroup]:
        return self.failures.groups()

    @property
    def outcome(self) -> str:
        if self.dry_run:
            return AuditEvent.Outcome.DRY_RUN
        return AuditEvent.Outcome.SUCCEEDED if self.ok else AuditEvent.Outcome.PARTIAL

    @property
    def outcome_label(self) -> str:
        return AuditEvent.Outcome(self.outcome).label


def ordered(groups: Iterable[FailureGroup]) -> list[FailureGroup]:
    """Most frequent first, then by table and reason: every group is shown, so order is only
    for reading."""
    return sorted(groups, key=lambda g: (-g.count, g.table, g.reason))


def groups_of_dicts(groups: Iterable) -> list[FailureGroup]:
    """FailureGroups back from their `as_dict()` (a dry run's audit event keeps them)."""
    kept = FailureGroups()
    for g in groups:
        if isinstance(g, dict):
            kept.add(
                str(g.get("table", "")),
                str(g.get("reason", "")),
                g.get("user_ids") or [],
                count=int(g.get("count") or 0),
            )
    return kept.groups()


def groups_of_items(items: Iterable) -> list[FailureGroup]:
    """Group `{"user_id", "table", "reason"}` dicts (an audit event's `not_provisioned`) or
    objects with those attributes."""
    groups = FailureGroups()
    for item in items:
        if isinstance(item, dict):
            groups.add(str(item.get("table", "")), str(item.get("reason", "")), [item.get("user_id")])
        else:
            groups.add(item.table, item.reason, [item.user_id])
    return groups.groups()


def _as_uuid(value) -> uuid.UUID | str:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return str(value)


_RUN_ITEMS = sql.SQL(
    "SELECT item FROM {events} e, jsonb_array_elements(e.not_provisioned) item "
    "WHERE e.run_id = %s AND e.action = %s AND e.outcome IN (%s, %s) "
    "AND jsonb_typeof(e.not_provisioned) = 'array'"
).format(events=sql.Identifier(AuditEvent._meta.db_table))

#: The ids of the users the run could not provision, well-formed ones only.
_RUN_USERS = sql.SQL(
    "SELECT DISTINCT (i.item ->> 'user_id')::uuid FROM ({items}) i "
    "WHERE i.item ->> 'user_id' ~* '^[0-9a-f]{{8}}-([0-9a-f]{{4}}-){{3}}[0-9a-f]{{12}}$'"
).format(items=_RUN_ITEMS)


def _run_params(run_id: uuid.UUID, action: str) -> list:
    """A run's committed batches: its events of `action` that succeeded, wholly or partly."""
    return [run_id, action, AuditEvent.Outcome.SUCCEEDED, AuditEvent.Outcome.PARTIAL]


def groups_of_run(run_id: uuid.UUID, *, action: str = AuditEvent.Action.PROVISION_ALL_MISSING) -> list[FailureGroup]:
    """The failures of a run's committed batches (its audit events), grouped in one query."""
    query = sql.SQL(
        "SELECT i.item ->> 'table', i.item ->> 'reason', count(*), "
        "(array_agg(i.item ->> 'user_id'))[1:{n}] FROM ({items}) i GROUP BY 1, 2 "
        "ORDER BY count(*) DESC, 1, 2"
    ).format(items=_RUN_ITEMS, n=sql.Literal(USERS_PER_GROUP))
    with connection.cursor() as cursor:
        cursor.execute(query, _run_params(run_id, action))
        rows = cursor.fetchall()
    groups = FailureGroups()
    for table, reason, n, ids in rows:
        groups.add(table or "", reason or "", ids or [], count=n)
    return groups.groups()


def not_provisioned_of_run(
    run_id: uuid.UUID, *, action: str = AuditEvent.Action.PROVISION_ALL_MISSING
) -> tuple[str, list]:
    """(SQL, params) selecting the distinct auth user ids a run could not provision: for a
    list filter, `pk__in=RawSQL(*not_provisioned_of_run(run_id))`."""
    connection.ensure_connection()
    return _RUN_USERS.as_string(connection.connection), _run_params(run_id, action)
