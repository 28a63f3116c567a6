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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from provisioning.actors import Actor
from provisioning.audit.failures import FailureGroups, ReportedRun
from provisioning.audit.recording import record_denied, record_event, record_failed
from provisioning.drift import statements
from provisioning.drift.columns import CopiedColumn, by_table, copied_columns, withheld_columns
from provisioning.drift.selectors import removal_order, scan_pays
from provisioning.engine import catalog, ledger
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
from provisioning.engine.statements import as_text
from provisioning.errors import first_line
from provisioning.models import AuditEvent, DriftedUser, DriftScan
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
class SyncResult(ReportedRun):
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
    #: Every blocked user counted by table and reason (`blocked` keeps only the first).
    failures: FailureGroups = field(default_factory=FailureGroups)

    @property
    def ok(self) -> bool:
        return self.blocked_count == 0

    @property
    def total_changed(self) -> int:
        return sum(self.changed.values())

    def add(self, batch: _Batch) -> None:
        self.batches += 1
        for name in self.columns:  # in the spec's order
            if batch.changed.get(name):
                self.changed[name] = self.changed.get(name, 0) + batch.changed[name]
        self.users_changed += batch.users
        self.changes.extend(batch.sample[: max(0, SAMPLE_SIZE - len(self.changes))])
        self.blocked_count += len(batch.blocked)
        for item in batch.blocked:
            self.failures.add(item.table, item.reason, [item.user_id])
        self.blocked.extend(batch.blocked[: max(0, SAMPLE_SIZE - len(self.blocked))])

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
        """The run as JSON, its blocked users by reason first (every reason, counted)."""
        return {
            "blocked_by_reason": [g.as_dict() for g in self.failure_groups],
            "outcome": self.outcome,
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
    specs = [(table_spec(t), cols) for t, cols in grouped.items()]
    ids = list(dict.fromkeys(uuid.UUID(str(i)) for i in user_ids or ()))
    slices = iter([ids[i : i + size] for i in range(0, len(ids), size)])
    after = FIRST_ID
    while specs:
        if all_drifted:
            params = {"after": after, "limit": size}
        else:
            params = {"ids": next(slices, None), "limit": size}
            if params["ids"] is None:
                break
        try:
            with transaction.atomic():
                hi, users, one_by_one = _fill_batch(specs, params, by_ids=not all_drifted)
                if hi is None:
                    break  # no drifted user left
                batch = _sync_batch(specs, hi, one_by_one, params.get("ids"), dry_run=dry_run)
                if not dry_run:
                    _record_batch(actor, result, chosen, batch)
                    ledger.refresh_blocked()  # a synced value may free or take one they wait for
        except DatabaseError as exc:
            message = first_line(exc)
            event = record_failed(
                actor=actor,
                action=Action.SYNC_VALUES,
                tables=list(grouped),
                target_user_ids=params.get("ids") or [],
                detail={
                    "batch": result.batches + 1,
                    "error": message,
                    "columns": names,
                    "dry_run": dry_run,
                    **({"after": str(after)} if all_drifted else {}),
                },
                run_id=result.run_id,
            )
            result.audit_event_ids.append(event.pk)
            raise ProvisioningFailed(message, result) from exc
        result.add(batch)
        if progress:
            progress(users if all_drifted else len(params["ids"]), result)
        after = hi
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


@dataclass
class _Batch:
    """What one batch changed (read from `statements.SYNCED`) and whom it blocked."""

    changed: dict[str, int] = field(default_factory=dict)  # users.email -> values
    users: int = 0
    sample: list[Change] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)


#: Past every uuid: the end of a batch of given users (all of them).
LAST_ID = uuid.UUID(int=2**128 - 1)


def _fill_batch(specs, params: dict, *, by_ids: bool) -> tuple[uuid.UUID | None, int, set[int]]:
    """Read the batch's drifted rows into one temporary table per table. Returns (the
    batch's last id, how many users it holds, the tables whose users go one by one), or
    (None, 0, ...) when no drifted user is left. For all drifted users, a batch is the
    first `limit` drifted users after `after`, in id order (a keyset walk, so a batch
    whose users stay drifted, blocked, does not come back). For given users, a table whose
    read fails on one user's value (a metadata value its column's type cannot take) has
    its users written one by one, each failure blocking that user alone."""
    one_by_one: set[int] = set()
    with connection.cursor() as cursor:
        cursor.execute(statements.create_synced())
        cursor.execute(statements.clear_synced())
        for index, (spec, columns) in enumerate(specs):
            cursor.execute(statements.drop_drift_batch(index))
            statement = statements.create_drift_batch(spec, columns, index, by_ids=by_ids)
            if not by_ids:
                cursor.execute(statement, params)
                continue
            try:
                with transaction.atomic():
                    cursor.execute(statement, params)
            except DatabaseError as exc:
                if not about_a_row(exc):
                    raise
                one_by_one.add(index)  # `_sync_batch` reads no drift table for it
        if by_ids:
            return LAST_ID, len(params["ids"]), one_by_one
        cursor.execute(statements.batch_end(len(specs)), params)
        hi, users = cursor.fetchone()
    return hi, users, one_by_one


def _sync_batch(specs, hi: uuid.UUID, one_by_one: set[int], ids: list | None, *, dry_run: bool) -> _Batch:
    """Write the batch (in a savepoint rolled back for a dry run) and read what it changed."""
    batch = _Batch()
    try:
        with transaction.atomic():
            for index, (spec, columns) in enumerate(specs):
                if index in one_by_one:
                    batch.blocked += _one_by_one(spec, columns, ids or [])
                else:
                    batch.blocked += _sync_table(spec, columns, index, hi)
            _read_synced(batch)
            if dry_run:
                raise _RollBack
    except _RollBack:
        pass
    return batch


def _read_synced(batch: _Batch) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statements.synced_counts())
        for table, column, n in cursor.fetchall():
            if table is None:
                batch.users = n
            else:
                batch.changed[f"{table.split('.', 1)[-1]}.{column}"] = n
        cursor.execute(statements.synced_sample(), {"sample": SAMPLE_SIZE})
        batch.sample = [Change(*row) for row in cursor.fetchall()]


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


def _sync_table(spec, columns: list[CopiedColumn], index: int, hi: uuid.UUID) -> list[Blocked]:
    """One UPDATE for the batch's rows of this table. It leaves alone a row whose new value
    on a unique column another row holds, or that changed since the batch read it; those
    users are then written again from live values (`_retry_left`). When the database
    rejects a row (two users of the batch wanting the same value, a CHECK, a trigger), the
    batch's users are written one by one. Returns the blocked users."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statements.sync_batch(spec, columns, index), {"hi": hi})
    except DatabaseError as exc:
        if not about_a_row(exc):
            raise
        with connection.cursor() as cursor:
            cursor.execute(statements.batch_keys(index), {"hi": hi})
            return _one_by_one(spec, columns, [row[0] for row in cursor.fetchall()])
    with connection.cursor() as cursor:
        cursor.execute(statements.left_in_batch(spec, index), {"hi": hi})
        left = [row[0] for row in cursor.fetchall()]
    return _retry_left(spec, columns, left) if left else []


#: Why a user is blocked whose row still differs after every pass, without a collision.
STILL_DIFFERS = (
    "{table}: the row still differs from auth after syncing (it changed while being synced, or a trigger on "
    "the table keeps or rewrites the value); run the sync again"
)


def _retry_left(spec, columns: list[CopiedColumn], left: list[uuid.UUID]) -> list[Blocked]:
    """The users the batch's UPDATE left alone, written again from live values, pass after
    pass while that brings someone in step: when B moves from b@ to c@ and A wants b@, the
    guard saw b@ still held, so A waits for a later pass; a row changed meanwhile is written
    with its new values. Users still differing are blocked: with the collision when there
    is one, otherwise as still differing (never dropped silently)."""
    statement = statements.sync(spec, columns)
    while left:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, {"ids": left})
        except DatabaseError as exc:
            if not about_a_row(exc):
                raise
            return _one_by_one(spec, columns, left)
        with connection.cursor() as cursor:
            cursor.execute(statements.still_drifted(spec, columns), {"ids": left})
            still = {row[0] for row in cursor.fetchall()}
        done = len(left) == len(still)
        left = [i for i in left if i in still]
        if done:
            break
    clashes = _unique_clashes(spec, columns, left) if left else {}
    reason = STILL_DIFFERS.format(table=spec.qualified_name)
    return [Blocked(user_id, spec.qualified_name, clashes.get(user_id, reason)) for user_id in left]


def _one_by_one(spec, columns: list[CopiedColumn], ids: list[uuid.UUID]) -> list[Blocked]:
    """Each user on their own, from live values, in a savepoint: the collisions are worked
    out first, and a row the database rejects blocks its user with the database's message."""
    clashes = _unique_clashes(spec, columns, ids) if ids else {}
    blocked = [Blocked(user_id, spec.qualified_name, reason) for user_id, reason in clashes.items()]
    statement = statements.sync(spec, columns)
    for user_id in (i for i in ids if i not in clashes):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, {"ids": [user_id]})
        except DatabaseError as exc:
            if not about_a_row(exc):
                raise
            blocked.append(Blocked(user_id, spec.qualified_name, row_error(exc)))
    return blocked


def _record_batch(actor: Actor, result: SyncResult, columns: list[CopiedColumn], batch: _Batch) -> None:
    """The batch's event, its changed values read from `statements.SYNCED` in SQL."""
    blocked = [b.as_dict() for b in batch.blocked]
    event = record_event(
        actor=actor,
        action=Action.SYNC_VALUES,
        outcome=Outcome.PARTIAL if blocked else Outcome.SUCCEEDED,
        tables=list(by_table(columns)),
        target_user_ids=RawSQL(statements.SYNCED_EVENT_TARGETS, ([str(b.user_id) for b in batch.blocked],)),  # noqa: S611 - constant SQL
        not_provisioned=blocked,
        detail=RawSQL(  # noqa: S611 - composed with psycopg.sql, values as parameters
            f"jsonb_build_object('columns', %s::jsonb, 'changes', {as_text(statements.synced_event_changes(columns))}, "
            "'blocked', %s::jsonb, 'batch', %s::int)",
            (json.dumps(result.columns), json.dumps(blocked), result.batches + 1),
        ),
        run_id=result.run_id,
    )
    result.audit_event_ids.append(event.pk)


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


# --- the list's drift scan ----------------------------------------------------------------------

#: How old the last drift scan may be before the list compares again.
DRIFT_SCAN_MAX_AGE = timedelta(seconds=60)
_SCAN_LOCK = "eloity.drift_scan"


def scan_drift(
    *, max_age: timedelta | None = None, grouped: dict[str, list[CopiedColumn]] | None = None
) -> DriftScan | None:
    """Compare every live user's copied values with auth and keep the users that differ
    (DriftedUser, with the time in DriftScan), unless the last scan, over the same columns,
    is younger than `max_age`. One hash join per table: about a second at a million users,
    where walking the list user by user took seconds when few differ. Writes only the
    dashboard's own tables; one scan at a time (a second waits for the first and uses it).
    `grouped`: the copied columns per table (`by_table`), when the caller has them.

    None, scanning nothing, where the list would not read a scan (`selectors.scan_pays`)."""
    grouped = by_table(copied_columns()) if grouped is None else grouped
    if not scan_pays(grouped):
        return None
    columns = [c.qualified for cols in grouped.values() for c in cols]

    def fresh() -> DriftScan | None:
        scan = DriftScan.objects.filter(pk=1).first()
        if max_age is None or scan is None or scan.columns != columns:
            return None
        return scan if timezone.now() - scan.scanned_at < max_age else None

    if scan := fresh():
        return scan
    started = timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [_SCAN_LOCK])
            if scan := fresh():
                return scan
            DriftedUser.objects.all().delete()
            tables = [(table_spec(t), cols) for t, cols in grouped.items()]
            cursor.execute(statements.keep_drifted(tables, DriftedUser._meta.db_table), {})
            found = cursor.rowcount
        scan, _ = DriftScan.objects.update_or_create(
            pk=1, defaults={"scanned_at": started, "columns": columns, "users": found}
        )
    return scan


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
            if not dry_run:
                ledger.refresh_blocked()  # a removed row may have held a unique value they wait for
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
