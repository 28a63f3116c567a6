"""Writes: bringing copied values back in step with the auth user, and removing orphaned
rows. Both audited like provisioning: a real run writes one AuditEvent per batch in the
batch's own transaction, recording old and new values (sync) or the removed rows in full
(orphans); a dry run runs the very same statements in a savepoint that is rolled back and
records one "dry run" event; a refusal records a "denied" event.

Only the columns the spec copies from the auth user are ever touched (`columns.py`), never
a secret one, and never anything in the auth schema.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction

from provisioning.actors import Actor
from provisioning.audit.recording import record_denied, record_event, record_failed
from provisioning.drift import statements
from provisioning.drift.columns import CopiedColumn, by_table, copied_columns, withheld_columns
from provisioning.drift.selectors import removal_order
from provisioning.engine import catalog
from provisioning.engine.services import (
    SAMPLE_SIZE,
    NotProvisioned,
    ProvisioningDenied,
    ProvisioningFailed,
    about_a_row,
    batch_size_or_default,
    require_provisioning,
    row_error,
)
from provisioning.errors import first_line
from provisioning.models import AuditEvent
from provisioning.spec import table_spec

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome
FIRST_ID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Change:
    user_id: uuid.UUID
    table: str  # public.users
    column: str
    old: str | None
    new: str | None

    def as_dict(self) -> dict:
        return {
            "user_id": str(self.user_id),
            "table": self.table,
            "column": self.column,
            "old": self.old,
            "new": self.new,
        }


#: A user a sync could not write, with the reason: provisioning's own record of it.
Blocked = NotProvisioned


@dataclass
class SyncResult:
    dry_run: bool
    columns: list[str]  # users.email
    run_id: uuid.UUID
    changed: dict[str, int] = field(default_factory=dict)  # per table.column
    users_changed: int = 0
    changes: list[Change] = field(default_factory=list)  # the first SAMPLE_SIZE
    blocked: list[Blocked] = field(default_factory=list)  # the first SAMPLE_SIZE
    blocked_count: int = 0
    batches: int = 0
    audit_event_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.blocked_count == 0

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())

    def add(self, changes: list[Change], blocked: list[Blocked]) -> None:
        self.batches += 1
        for change in changes:
            key = f"{change.table.split('.', 1)[-1]}.{change.column}"
            self.changed[key] = self.changed.get(key, 0) + 1
        self.users_changed += len({c.user_id for c in changes})
        self.changes.extend(changes[: max(0, SAMPLE_SIZE - len(self.changes))])
        self.blocked_count += len(blocked)
        self.blocked.extend(blocked[: max(0, SAMPLE_SIZE - len(self.blocked))])

    def summary(self) -> str:
        verb = "Would sync" if self.dry_run else "Synced"
        if self.total_changed:
            each = ", ".join(f"{name}: {n}" for name, n in self.changed.items())
            text = f"{verb} {self.total_changed} value(s) of {self.users_changed} user(s) from auth ({each})."
        else:
            text = f"Nothing {'would be' if self.dry_run else 'was'} synced: the values already match auth."
        if self.blocked_count:
            text += f" {self.blocked_count} user(s) blocked (see the reasons)."
        return text

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "run_id": str(self.run_id),
            "columns": self.columns,
            "changed": self.changed,
            "users_changed": self.users_changed,
            "changes": [c.as_dict() for c in self.changes],
            "blocked_count": self.blocked_count,
            "blocked": [b.as_dict() for b in self.blocked],
            "batches": self.batches,
            "audit_event_ids": self.audit_event_ids,
        }


class _RollBack(Exception):
    """Leaves a dry run's savepoint, undoing what it wrote."""


def sync_values(
    *,
    actor: Actor,
    user_ids: Sequence[uuid.UUID | str] | None = None,
    all_drifted: bool = False,
    tables: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Callable[[int, SyncResult], None] | None = None,
) -> SyncResult:
    """Set the copied columns of `user_ids` (or of every user whose values differ, with
    `all_drifted`) to the auth user's values, where they differ. `tables` and `columns`
    (`table.column` or `column`) narrow what is compared and written.

    Idempotent (a second run changes nothing). Set-based, in batches of `batch_size` users
    (default: PROVISIONING_BATCH_SIZE, 50,000, as provisioning), one transaction and one
    audit event each, recording the old and new value of every column changed. A user whose
    new value is already another row's on a unique column is blocked, with the reason, and
    the rest of the batch goes on. A dry run
    runs the same statements and rolls them back, so it reports exactly what a run would do.

    Raises ValueError for an unknown table or column, ProvisioningDenied without the
    provision permission, ProvisioningFailed when a batch hits a database error.
    """
    if (user_ids is None) == (not all_drifted):
        raise ValueError("give user ids or all_drifted, not both")
    chosen = copied_columns(tables, columns)
    grouped = by_table(chosen)
    names = [c.name for c in chosen]
    require_provisioning(
        actor=actor,
        action=Action.SYNC_VALUES,
        tables=list(grouped),
        detail={"columns": names},
        what="sync values from auth",
    )
    size = batch_size_or_default(batch_size)
    result = SyncResult(dry_run=dry_run, columns=names, run_id=uuid.uuid4())
    if all_drifted:
        batches = _drifted_batches(grouped, size)
    else:
        ids = list(dict.fromkeys(uuid.UUID(str(i)) for i in user_ids or ()))
        batches = iter([ids[i : i + size] for i in range(0, len(ids), size)])
    for ids in batches:
        try:
            with transaction.atomic():
                changes, blocked = _sync_batch(grouped, ids, dry_run=dry_run)
                if not dry_run:
                    _record_sync(
                        actor, result, grouped, changes, blocked, Outcome.PARTIAL if blocked else Outcome.SUCCEEDED
                    )
        except DatabaseError as exc:
            message = first_line(exc)
            event = record_failed(
                actor=actor,
                action=Action.SYNC_VALUES,
                tables=list(grouped),
                target_user_ids=ids,
                detail={"batch": result.batches + 1, "error": message, "columns": names, "dry_run": dry_run},
                run_id=result.run_id,
            )
            result.audit_event_ids.append(event.pk)
            raise ProvisioningFailed(message, result) from exc
        result.add(changes, blocked)
        if progress:
            progress(len(ids), result)
    if dry_run or not result.audit_event_ids:
        # A dry run, or a run that found nothing to do: one event says it ran.
        with transaction.atomic():
            _record_sync(
                actor,
                result,
                grouped,
                result.changes,
                result.blocked,
                Outcome.DRY_RUN if dry_run else Outcome.SUCCEEDED,
                summary=True,
            )
    return result


def _drifted_batches(grouped: dict[str, list[CopiedColumn]], size: int) -> Iterator[list[uuid.UUID]]:
    """Batches of drifted user ids in id order (a keyset walk: each batch starts after the
    last), so a batch whose users stay drifted (blocked) does not come back."""
    if not grouped:
        return
    query = statements.next_drifted([(table_spec(t), cols) for t, cols in grouped.items()])
    after = FIRST_ID
    while True:
        with connection.cursor() as cursor:
            cursor.execute(query, {"after": after, "limit": size})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return
        yield ids
        after = ids[-1]


def _sync_batch(
    grouped: dict[str, list[CopiedColumn]], ids: list[uuid.UUID], *, dry_run: bool
) -> tuple[list[Change], list[Blocked]]:
    changes: list[Change] = []
    blocked: list[Blocked] = []
    try:
        with transaction.atomic():
            for table, columns in grouped.items():
                changes += _sync_table(table_spec(table), columns, ids, blocked)
            if dry_run:
                raise _RollBack
    except _RollBack:
        pass
    return changes, blocked


def _unique_clashes(spec, columns: list[CopiedColumn], ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """{user id: why} for the users whose new value on a unique column is already another
    row's, or wanted by another user of the batch."""
    clashes: dict[uuid.UUID, str] = {}
    with connection.cursor() as cursor:
        for column in columns:
            if not column.unique:
                continue
            cursor.execute(statements.unique_clashes(spec, column), {"ids": ids})
            for user_id, value, holder, wanted in cursor.fetchall():
                if holder is not None:
                    clashes.setdefault(
                        user_id,
                        f"{column.qualified}: the new value {value!r} is already the row of user {holder} "
                        "(unique); free it first",
                    )
                elif wanted > 1:
                    clashes.setdefault(
                        user_id, f"{column.qualified}: {wanted} users being synced would all get {value!r} (unique)"
                    )
    return clashes


def _sync_table(spec, columns: list[CopiedColumn], ids: list[uuid.UUID], blocked: list[Blocked]) -> list[Change]:
    """One UPDATE for the batch, which leaves alone a user whose new value on a unique column
    another row holds; those users are then blocked with the reason. When the database still
    rejects a row (two users of the batch wanting the same value, a CHECK, a trigger), the
    collisions are worked out first and then each remaining user is written on their own."""
    if not ids:
        return []
    statement = statements.sync(spec, columns)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, {"ids": ids})
            changes = _changes(spec, columns, cursor.fetchall())
    except DatabaseError as exc:
        if not about_a_row(exc):
            raise
    else:
        if any(c.unique for c in columns):
            changes += _retry_freed(spec, statement, columns, ids, changes)
            written = {c.user_id for c in changes}
            left = [i for i in ids if i not in written]
            clashes = _unique_clashes(spec, columns, left) if left else {}
            blocked += [Blocked(user_id, spec.qualified_name, reason) for user_id, reason in clashes.items()]
        return changes
    clashes = _unique_clashes(spec, columns, ids)
    blocked += [Blocked(user_id, spec.qualified_name, reason) for user_id, reason in clashes.items()]
    changes = []
    for user_id in (i for i in ids if i not in clashes):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, {"ids": [user_id]})
                changes += _changes(spec, columns, cursor.fetchall())
        except DatabaseError as exc:
            if not about_a_row(exc):
                raise
            blocked.append(Blocked(user_id, spec.qualified_name, row_error(exc)))
    return changes


def _retry_freed(spec, statement, columns: list[CopiedColumn], ids, changes: list[Change]) -> list[Change]:
    """The users the UPDATE left alone because another row held their new value, again,
    while that frees values: when B moves from b@ to c@ and A wants b@, the statement's
    guard saw b@ still held, so A waits for this second pass."""
    more: list[Change] = []
    written = {c.user_id for c in changes}
    left = [i for i in ids if i not in written]
    while left and written:
        with connection.cursor() as cursor:
            cursor.execute(statement, {"ids": left})
            found = _changes(spec, columns, cursor.fetchall())
        written = {c.user_id for c in found}
        more += found
        left = [i for i in left if i not in written]
    return more


def _changes(spec, columns: list[CopiedColumn], rows: list[tuple]) -> list[Change]:
    found = []
    for key, *values in rows:
        for i, column in enumerate(columns):
            old, new, changed = values[3 * i : 3 * i + 3]
            if changed:
                found.append(Change(key, spec.qualified_name, column.column, old, new))
    return found


def _record_sync(
    actor: Actor,
    result: SyncResult,
    grouped: dict[str, list[CopiedColumn]],
    changes: list[Change],
    blocked: list[Blocked],
    outcome: str,
    *,
    summary: bool = False,
) -> None:
    """The batch's event (or, with `summary`, the run's: a dry run, or a run with nothing to
    do). Old and new values of every column changed; the blocked users with their reasons."""
    users = list(dict.fromkeys([c.user_id for c in changes] + [b.user_id for b in blocked]))
    detail = {
        "columns": result.columns,
        # Per column, [user id, old, new]: a batch holds up to 50,000 of them, so compact.
        "changes": _by_column(changes),
        "blocked": [b.as_dict() for b in blocked],
    }
    if summary:
        detail.update(changed=result.changed, blocked_count=result.blocked_count, users_changed=result.users_changed)
    else:
        detail["batch"] = result.batches + 1
    event = record_event(
        actor=actor,
        action=Action.SYNC_VALUES,
        outcome=outcome,
        tables=list(grouped),
        target_user_ids=users,
        not_provisioned=[b.as_dict() for b in blocked],
        detail=detail,
        run_id=result.run_id,
    )
    result.audit_event_ids.append(event.pk)


def _by_column(changes: list[Change]) -> dict[str, list[list]]:
    """{"public.users.email": [[user id, old, new], ...]}: the changes of an audit event."""
    grouped: dict[str, list[list]] = {}
    for c in changes:
        grouped.setdefault(f"{c.table}.{c.column}", []).append([str(c.user_id), c.old, c.new])
    return grouped


# --- orphans ----------------------------------------------------------------------------------


@dataclass
class OrphanResult:
    dry_run: bool
    removed: dict[str, list[dict]] = field(default_factory=dict)  # table -> rows in full
    audit_event_ids: list[int] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.removed.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.total:
            return "No orphaned rows: every app row belongs to an auth user."
        each = ", ".join(f"{n} from {t}" for t, n in self.counts.items() if n)
        return f"{'Would remove' if self.dry_run else 'Removed'} {self.total} orphaned row(s): {each}."

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts,
            "removed": self.removed,
            "audit_event_ids": self.audit_event_ids,
        }


#: Delete rules under which removing a row changes another table's rows: cascade, set
#: null, set default.
_FOLLOWING = {"c", "n", "d"}


def _refuse_unrecorded_followers(order) -> None:
    """Refuse (an `_Unrecorded` error, which `remove_orphans` turns into a failed event and
    ProvisioningFailed, nothing removed) when removing the orphans
    would also delete or change rows of a table outside this removal (a cascade from the
    real app's posts, say, or a spec child left out with --table): those rows would go
    unrecorded. Reads only."""
    names = {(s.schema, s.name) for s in order}
    followers = []
    with connection.cursor() as cursor:
        for spec in order:
            for schema, table, fk in catalog.foreign_keys_to(spec.schema, spec.name, same_schema=True):
                if (schema, table) in names or fk.on_delete not in _FOLLOWING:
                    continue
                cursor.execute(statements.rows_following_orphans(spec, schema, table, fk), {})
                (n,) = cursor.fetchone()
                if n:
                    followers.append(f"{n} row(s) of {schema}.{table} ({fk.name}, ON DELETE {_RULES[fk.on_delete]})")
    if followers:
        raise _Unrecorded(
            "removing these orphans would also delete or change "
            + "; ".join(followers)
            + ", which the audit event would not keep. Remove or reassign those rows first (or include the table)."
        )


class _Unrecorded(DatabaseError):
    """Removing the orphans would change rows this removal does not record."""


_RULES = {"c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def remove_orphans(*, actor: Actor, tables: Sequence[str] | None = None, dry_run: bool = False) -> OrphanResult:
    """Delete the app rows whose auth user no longer exists (soft-deleted users' rows are
    not orphans), children before parents, in one transaction with one audit event that
    keeps every removed row in full but for columns holding secrets (`withheld_columns`:
    a password, a wallet seed, a bank account), so a removal can be reviewed and undone by
    hand.

    Needs `provisioning.remove_orphans` (in no group by default; the command line acts with
    the database role's rights); a refusal is audited and raises ProvisioningDenied. A dry
    run deletes in a savepoint and rolls back. ValueError for an unknown table;
    ProvisioningFailed when the database refuses (say, a foreign key from another table).
    """
    order = removal_order()
    if tables:
        unknown = sorted(set(tables) - {s.name for s in order})
        if unknown:
            raise ValueError(f"unknown table {', '.join(unknown)} (choose from {', '.join(s.name for s in order)})")
        order = [s for s in order if s.name in tables]
    names = [s.name for s in order]
    if not actor.may_remove_orphans():
        record_denied(actor=actor, action=Action.REMOVE_ORPHANS, tables=names)
        raise ProvisioningDenied("You do not have permission to remove orphaned rows.")
    result = OrphanResult(dry_run=dry_run)
    withheld: dict[str, list[str]] = {}
    try:
        _refuse_unrecorded_followers(order)
        with transaction.atomic():
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    for spec in order:
                        withheld[spec.qualified_name] = withheld_columns(spec)
                        cursor.execute(
                            statements.orphans(spec, action="delete", withheld=withheld[spec.qualified_name]), {}
                        )
                        result.removed[spec.qualified_name] = [json.loads(row[0]) for row in cursor.fetchall()]
                    if dry_run:
                        raise _RollBack
            except _RollBack:
                pass
            keys = (row.get(s.key) for s in order for row in result.removed[s.qualified_name])
            ids = list(dict.fromkeys(str(k) for k in keys if k is not None))
            event = record_event(
                actor=actor,
                action=Action.REMOVE_ORPHANS,
                outcome=Outcome.DRY_RUN if dry_run else Outcome.SUCCEEDED,
                tables=names,
                target_user_ids=ids,
                detail={
                    "counts": result.counts,
                    "removed": result.removed,
                    # Secrets are never kept in the audit log: name what was left out.
                    "withheld_columns": {t: cols for t, cols in withheld.items() if cols},
                },
            )
            result.audit_event_ids.append(event.pk)
    except DatabaseError as exc:
        message = first_line(exc)
        event = record_failed(actor=actor, action=Action.REMOVE_ORPHANS, tables=names, detail={"error": message})
        result.removed = {}
        result.audit_event_ids.append(event.pk)
        raise ProvisioningFailed(message, result) from exc
    return result
