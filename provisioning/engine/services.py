"""Writes: provisioning of missing app rows. The only code that writes app tables.

Every call is audited: a real run writes one `AuditEvent` per batch in the same transaction
as the batch's rows (both commit or neither does); a dry run writes one event that records
it ran; a refused call writes a "denied" event; a failed batch writes a "failed" event after
its rows were rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction
from django.db.models.expressions import RawSQL
from psycopg import sql as psql

from provisioning.actors import Actor
from provisioning.audit.failures import FailureGroups, ReportedRun
from provisioning.audit.recording import record_denied, record_event, record_failed
from provisioning.engine import ledger, statements
from provisioning.engine.plans import TablePlan, plan_run, require_write_order
from provisioning.engine.selectors import blocked_by_reason
from provisioning.errors import connection_lost, first_line
from provisioning.models import AuditEvent
from provisioning.spec import SPEC, select_tables

#: How many ids a result keeps per table, and how many not-provisioned entries: results
#: stay small whatever the run's size (the audit log holds the full lists, batch by batch).
SAMPLE_SIZE = 200
UNKNOWN_USER_REASON = "no such auth user"
CONFLICT_REASON = "the row collides with an existing row on a unique key"

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome


class ProvisioningDenied(PermissionDenied):
    """The actor lacks `provisioning.provision_users`. A "denied" event was recorded."""


class ProvisioningFailed(Exception):
    """A batch raised a database error: its rows were rolled back, a "failed" event recorded.

    Batches committed before it stay committed (and audited); `result` says what they did.
    """

    def __init__(self, message: str, result: ProvisioningResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class NotProvisioned:
    user_id: uuid.UUID
    table: str
    reason: str
    #: For a unique value taken or shared: the auth user whose row holds it (that row's
    #: key), when a row holds it.
    held_by: uuid.UUID | None = None

    def as_dict(self) -> dict:
        found = {"user_id": str(self.user_id), "table": self.table, "reason": self.reason}
        if self.held_by is not None:
            found["held_by"] = str(self.held_by)
        return found


def _explained(plan: TablePlan, rows: Iterable[tuple]) -> Iterator[tuple[uuid.UUID, str | None, uuid.UUID | None]]:
    """(user, reason or None, owner of the row holding the user's value) from the rows of
    `statements.missing_in_batch` or `left_after_insert`: (user, reason, then the row owner
    per unique blocker). The owner is kept where the reason is that blocker's."""
    blockers = statements.unique_blockers(plan)
    for user_id, reason, *owners in rows:
        held_by = None
        for blocker, owner in zip(blockers, owners, strict=True):
            if reason in (blocker.reason, statements.shared_reason(blocker)):
                held_by = owner
                break
        yield user_id, reason, held_by


@dataclass
class ProvisioningResult(ReportedRun):
    action: str
    dry_run: bool
    tables: list[str]
    run_id: uuid.UUID
    created: dict[str, int] = field(default_factory=dict)
    created_sample: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    not_provisioned: list[NotProvisioned] = field(default_factory=list)
    not_provisioned_count: int = 0
    users_processed: int = 0
    batches: int = 0
    skipped_columns: dict[str, list[str]] = field(default_factory=dict)
    audit_event_ids: list[int] = field(default_factory=list)
    cancelled: bool = False
    #: The highest auth user id of the last batch (batches are in id order): where a
    #: resumed `provision_all_missing` starts.
    last_user_id: uuid.UUID | None = None
    #: Every failure counted by table and reason (`not_provisioned` keeps only the first).
    failures: FailureGroups = field(default_factory=FailureGroups)

    @property
    def total_created(self) -> int:
        return sum(self.created.values())

    @property
    def ok(self) -> bool:
        return self.not_provisioned_count == 0

    def add_batch(self, batch: BatchOutcome) -> None:
        self.batches += 1
        self.users_processed += batch.users_count
        if batch.last_user_id is not None:
            self.last_user_id = batch.last_user_id
        for table, n in batch.created_counts.items():
            self.created[table] = self.created.get(table, 0) + n
            sample = self.created_sample.setdefault(table, [])
            sample.extend(batch.created_sample.get(table, [])[: max(0, SAMPLE_SIZE - len(sample))])
        self.not_provisioned_count += len(batch.not_provisioned)
        for item in batch.not_provisioned:
            self.failures.add(item.table, item.reason, [item.user_id])
        room = max(0, SAMPLE_SIZE - len(self.not_provisioned))
        self.not_provisioned.extend(batch.not_provisioned[:room])

    def summary(self, *, subject: str | None = None) -> str:
        """What happened, as a sentence for a person, tables with nothing left out:
        `Created a profile and a wallet for eloityhq@gmail.com.` (`subject` names the one
        user), `Created 153 profiles and 118 wallets for 169 users.`, `Would create ...` for
        a dry run, `Nothing was created for 3 users.`"""
        labels = {spec.name: spec.label for spec in SPEC}
        made = [_counted(n, labels.get(t, t), one="a") for t in self.tables if (n := self.created.get(t, 0))]
        who = subject or _counted(self.users_processed, "user")
        if made:
            text = f"{'Would create' if self.dry_run else 'Created'} {_and(made)} for {who}."
        else:
            text = f"Nothing {'would be' if self.dry_run else 'was'} created for {who}."
        if self.not_provisioned_count:
            text += f" {_counted(self.not_provisioned_count, 'row')} could not be provisioned."
        if self.cancelled:
            text += " Cancelled before the end."
        return text

    def as_dict(self) -> dict:
        """The run as JSON, its failures by reason first (every reason, counted)."""
        return {
            "failures_by_reason": [g.as_dict() for g in self.failure_groups],
            "outcome": self.outcome,
            "action": self.action,
            "dry_run": self.dry_run,
            "run_id": str(self.run_id),
            "tables": self.tables,
            "users_processed": self.users_processed,
            "batches": self.batches,
            "created": self.created,
            "created_sample": {t: [str(i) for i in ids] for t, ids in self.created_sample.items()},
            "not_provisioned_count": self.not_provisioned_count,
            "not_provisioned": [n.as_dict() for n in self.not_provisioned],
            "skipped_columns": self.skipped_columns,
            "audit_event_ids": self.audit_event_ids,
            "cancelled": self.cancelled,
        }


@dataclass(frozen=True)
class Batch:
    """The users of one transaction. `missing_from` (table -> ids), when known, says which
    tables each lacks, so a table is touched only for its own missing users."""

    ids: list[uuid.UUID]
    missing_from: dict[str, list[uuid.UUID]] | None = None

    def ids_for(self, table: str) -> list[uuid.UUID]:
        return self.ids if self.missing_from is None else self.missing_from.get(table, [])


#: Max UUID: the end of the id space.
LAST_ID = uuid.UUID(int=2**128 - 1)
#: How many auth users the first batch looks through, per user it may hold. Later batches
#: look through what the previous one needed to fill up, plus a quarter (or twice as many
#: as it looked through, when it did not fill up), never more than MAX_WINDOW_PER_USER per
#: user: each window costs one read of each app table's slice (a scan, without an index).
WINDOW_PER_USER = 4
MAX_WINDOW_PER_USER = 64


@dataclass
class RangeBatch:
    """The next (at most) `limit` auth users after `lo` that lack a row, within a window of
    auth users: one transaction that writes each table with one statement ("all missing").
    Where it ends (`hi`, the last auth user it covered) is known once it ran."""

    lo: uuid.UUID
    limit: int
    #: How many auth users after `lo` it looks through.
    window: int = 0
    hi: uuid.UUID | None = None
    #: The window reached the last auth user and the batch took everyone in it.
    exhausted: bool = False
    #: The window the next batch should look through (from this one's density).
    next_window: int = 0
    ids: tuple = ()  # not known up front: the ids live in the database (statements.BATCH)


@dataclass
class BatchOutcome:
    not_provisioned: list[NotProvisioned]
    #: How many users the batch covered, rows written per table, and samples of both.
    users_count: int = 0
    created_counts: dict[str, int] = field(default_factory=dict)
    created_sample: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    user_sample: list[uuid.UUID] = field(default_factory=list)
    #: A batch of given ids: its users and, per table, the ids written (as the audit event
    #: keeps them). None for a range batch: those stay in the database (statements.WRITTEN).
    user_ids: list[uuid.UUID] | None = None
    created: dict[str, list[str]] | None = None
    #: Where the next batch of an id-ordered walk starts (the range's end, or the last id).
    last_user_id: uuid.UUID | None = None


#: progress(batches_done, users_done, result) after each batch.
Progress = Callable[[int, int, ProvisioningResult], None]


def _counted(n: int, noun: str, *, one: str | None = None) -> str:
    """`153 profiles`; with `one`, a single thing reads `a profile` / `an app user`."""
    if n == 1:
        article = ("an" if noun[:1] in "aeiou" else "a") if one else "1"
        return f"{article} {noun}"
    return f"{n:,} {noun}s"


def _and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def provision_users(
    *,
    actor: Actor,
    user_ids: Sequence[uuid.UUID | str],
    tables: Sequence[str] | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
    action: str | None = None,
) -> ProvisioningResult:
    """Create exactly the missing app rows for the given auth users.

    Idempotent (a second run creates nothing) and safe beside concurrent runs and the
    sign-up trigger. Users that cannot be provisioned (unknown id, soft-deleted, no email
    where the table demands one, a colliding unique value) are reported in the result and
    do not stop the rest. Batches of `batch_size` users, one transaction and one audit event
    each. A dry run writes no app row and returns exactly what a real run would write.

    Raises ValueError for an unknown table, ProvisioningDenied without the permission,
    ProvisioningFailed when a batch hits a database error. `action` names the run in the
    audit log (default: one user or selected users).
    """
    ids = list(dict.fromkeys(uuid.UUID(str(i)) for i in user_ids))
    action = action or (Action.PROVISION_USER if len(ids) == 1 else Action.PROVISION_SELECTED)
    size = batch_size_or_default(batch_size)

    def batches(plans: list[TablePlan]) -> Iterator[Batch]:
        return (Batch(ids[i : i + size]) for i in range(0, len(ids), size))

    return _run(actor=actor, action=action, tables=tables, dry_run=dry_run, batches=batches, progress=progress)


def provision_all_missing(
    *,
    actor: Actor,
    tables: Sequence[str] | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    run_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
) -> ProvisioningResult:
    """Provision every live, non-anonymous auth user missing a row in any of `tables`.

    Walks auth.users by primary key in batches of `batch_size` (default
    settings.PROVISIONING_BATCH_SIZE), one transaction and one audit event per batch, so
    memory stays flat and a run killed part way leaves only complete, audited batches; run
    it again to finish. `should_stop` is polled between batches. Otherwise as
    `provision_users`.

    `run_id` tags every batch's audit event (a background job passes its own, so all its
    attempts share one); `after` starts the walk after that auth user id (a resumed job).
    """
    size = batch_size_or_default(batch_size)
    start_after = after or uuid.UUID(int=0)

    def batches(plans: list[TablePlan]) -> Iterator[RangeBatch]:
        # Each batch holds the next `size` users missing a row, live or not (soft-deleted
        # and anonymous users are walked over, never provisioned), and says where it ended.
        batch = RangeBatch(start_after, size, window=size * WINDOW_PER_USER)
        while True:
            yield batch
            if batch.exhausted or batch.hi is None:
                return
            batch = RangeBatch(batch.hi, size, window=batch.next_window)

    return _run(
        actor=actor,
        action=Action.PROVISION_ALL_MISSING,
        tables=tables,
        dry_run=dry_run,
        batches=batches,
        progress=progress,
        should_stop=should_stop,
        run_id=run_id,
    )


def preview_all_missing(
    *, actor: Actor, tables: Sequence[str] | None = None, sample_size: int = 25
) -> ProvisioningResult:
    """What `provision_all_missing` would write, without walking every batch.

    Counts come from one anti-join count per table less the users each table blocks
    (counted in SQL), so the preview stays quick on a million users; the sample of users is
    a real dry run of the first `sample_size` candidates. Writes no app row; audits one
    "dry run" event that holds the counts (not the users, so user histories stay clean).
    Raises ProvisioningDenied without the permission.
    """
    plans, result = _start(actor=actor, action=Action.PROVISION_ALL_MISSING, tables=tables, dry_run=True)
    table_names = result.tables
    with connection.cursor() as cursor:
        cursor.execute(statements.status_counts(plans))
        _, *missing_per_table, result.users_processed = cursor.fetchone()
    for plan, missing in zip(plans, missing_per_table, strict=True):
        blocked = blocked_by_reason(plan, sample=SAMPLE_SIZE)
        blocked_total = sum(n for _, n, _ in blocked)
        result.created[plan.name] = missing - blocked_total
        result.not_provisioned_count += blocked_total
        for reason, n, ids in blocked:
            result.failures.add(plan.name, reason, ids, count=n)
            room = SAMPLE_SIZE - len(result.not_provisioned)
            result.not_provisioned += [NotProvisioned(u, plan.name, reason) for u in ids[: max(room, 0)]]
    with connection.cursor() as cursor:
        cursor.execute(statements.next_missing_candidates(plans), {"after": uuid.UUID(int=0), "limit": sample_size})
        first = _batch_of_live(cursor.fetchall())
    if first.ids:
        sample = _provision_batch(first, plans, dry_run=True)
        result.created_sample = {t: ids for t, ids in sample.created_sample.items() if ids}
    with transaction.atomic():
        event = record_event(
            actor=actor,
            action=Action.PROVISION_ALL_MISSING,
            outcome=Outcome.DRY_RUN,
            tables=table_names,
            detail={
                "would_create": result.created,
                "users_missing_any": result.users_processed,
                "not_provisioned_count": result.not_provisioned_count,
                "failures_by_reason": [g.as_dict() for g in result.failure_groups],
                "skipped_columns": result.skipped_columns,
                "preview": True,
            },
            run_id=result.run_id,
        )
    result.audit_event_ids.append(event.pk)
    return result


def _batch_of_live(candidates: list[tuple]) -> Batch:
    """A Batch from `statements.next_missing_candidates` rows, keeping live users only."""
    live = [(user_id, tables) for user_id, is_live, tables in candidates if is_live]
    missing_from: dict[str, list[uuid.UUID]] = {}
    for user_id, tables in live:
        for table in tables:
            missing_from.setdefault(table, []).append(user_id)
    return Batch([user_id for user_id, _ in live], missing_from)


def require_provisioning(
    *, actor: Actor, action: str, tables: Sequence[str] = (), detail: dict | None = None, what: str = "provision users"
) -> None:
    """Raise ProvisioningDenied, after recording a "denied" event, unless `actor` may
    provision. Every write path calls this, whatever page or command it came from."""
    if not actor.may_provision():
        record_denied(actor=actor, action=action, tables=tables, detail=detail)
        raise ProvisioningDenied(f"You do not have permission to {what}.")


def batch_size_or_default(batch_size: int | None) -> int:
    size = batch_size or settings.PROVISIONING_BATCH_SIZE
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return size


def _start(
    *, actor: Actor, action: str, tables: Sequence[str] | None, dry_run: bool, run_id: uuid.UUID | None = None
) -> tuple[list[TablePlan], ProvisioningResult]:
    """Check the tables and the actor's permission (a refusal is audited as "denied"), plan
    the tables against the live catalog, and open an empty result."""
    specs = select_tables(tables)
    table_names = [s.name for s in specs]
    require_provisioning(actor=actor, action=action, tables=table_names)
    plans = plan_run(SPEC, table_names)
    require_write_order(plans)
    result = ProvisioningResult(
        action=action,
        dry_run=dry_run,
        tables=table_names,
        run_id=run_id or uuid.uuid4(),
        created={t: 0 for t in table_names},
        skipped_columns={p.name: p.skipped_columns for p in plans if p.skipped_columns},
    )
    return plans, result


def _run(
    *,
    actor: Actor,
    action: str,
    tables: Sequence[str] | None,
    dry_run: bool,
    batches: Callable[[list[TablePlan]], Iterable[Batch | RangeBatch]],
    progress: Progress | None,
    should_stop: Callable[[], bool] | None = None,
    run_id: uuid.UUID | None = None,
) -> ProvisioningResult:
    plans, result = _start(actor=actor, action=action, tables=tables, dry_run=dry_run, run_id=run_id)
    table_names = result.tables
    dry_run_targets: list[str] = []
    for batch_users in batches(plans):
        ids = batch_users.ids
        try:
            with transaction.atomic():
                batch = _provision_batch(batch_users, plans, dry_run=dry_run)
                if not batch.users_count:
                    continue  # a range of soft-deleted or anonymous users only: nothing to record
                if not dry_run:
                    event = record_event(
                        actor=actor,
                        action=action,
                        outcome=Outcome.PARTIAL if batch.not_provisioned else Outcome.SUCCEEDED,
                        tables=table_names,
                        not_provisioned=[n.as_dict() for n in batch.not_provisioned],
                        detail={"batch": result.batches + 1, "skipped_columns": result.skipped_columns},
                        run_id=result.run_id,
                        **_event_rows(batch, table_names),
                    )
                    result.audit_event_ids.append(event.pk)
                    _keep_ledger(batch_users, plans)
        except DatabaseError as exc:
            message = first_line(exc)
            event = record_failed(
                actor=actor,
                action=action,
                tables=table_names,
                target_user_ids=list(ids),
                detail={
                    "batch": result.batches + 1,
                    "error": message,
                    "dry_run": dry_run,
                    **_range_detail(batch_users),
                },
                run_id=result.run_id,
            )
            result.audit_event_ids.append(event.pk)
            raise ProvisioningFailed(message, result) from exc
        result.add_batch(batch)
        if dry_run and len(dry_run_targets) < SAMPLE_SIZE:
            dry_run_targets.extend(str(i) for i in batch.user_sample[: SAMPLE_SIZE - len(dry_run_targets)])
        if progress:
            progress(result.batches, result.users_processed, result)
        if should_stop and should_stop():
            result.cancelled = True
            break

    if dry_run:
        with transaction.atomic():
            event = record_event(
                actor=actor,
                action=action,
                outcome=Outcome.DRY_RUN,
                tables=table_names,
                target_user_ids=dry_run_targets,
                rows_created={t: [str(i) for i in ids] for t, ids in result.created_sample.items()},
                not_provisioned=[n.as_dict() for n in result.not_provisioned],
                detail={
                    "would_create": result.created,
                    "users_processed": result.users_processed,
                    "not_provisioned_count": result.not_provisioned_count,
                    "failures_by_reason": [g.as_dict() for g in result.failure_groups],
                    "skipped_columns": result.skipped_columns,
                },
                run_id=result.run_id,
            )
        result.audit_event_ids.append(event.pk)
    return result


def _keep_ledger(batch: Batch | RangeBatch, plans: list[TablePlan]) -> None:
    """Recompute the provisioning ledger's entries of the batch's users, in the batch's own
    transaction (engine/ledger.py): the counts read from it stay exact after our writes.
    Every table's flags, whichever tables the run wrote. A range batch that wrote every
    spec table knows whom it wrote everything they lacked: only the others are recomputed."""
    if isinstance(batch, RangeBatch):
        every_table = {plan.name for plan in plans} == {spec.name for spec in SPEC}
        ledger.refresh_users(
            psql.SQL("u.id IN (SELECT id FROM {})").format(statements.BATCH),
            may_lack=statements.batch_left(plans) if every_table else None,
        )
    else:
        ledger.refresh_users(psql.SQL("u.id = ANY(%(ids)s)"), {"ids": list(batch.ids)})


def _provision_batch(batch: Batch | RangeBatch, plans: list[TablePlan], *, dry_run: bool) -> BatchOutcome:
    """One batch, inside the caller's transaction. A dry run is the real run inside a
    savepoint that is rolled back: what it reports is exactly what a real run would write,
    CHECK constraints, triggers and foreign keys included."""
    write = _write_range if isinstance(batch, RangeBatch) else _write_batch
    if not dry_run:
        return write(batch, plans)
    try:
        with transaction.atomic():
            outcome = write(batch, plans)
            raise _DryRunDone(outcome)
    except _DryRunDone as done:
        return done.outcome


class _DryRunDone(Exception):
    """Leaves the dry run's savepoint, rolling back what it wrote."""

    def __init__(self, outcome: BatchOutcome):
        super().__init__("dry run")
        self.outcome = outcome


def _write_batch(batch: Batch, plans: list[TablePlan]) -> BatchOutcome:
    """Parents before children, a few set-based statements per table. A row the database
    rejects (a CHECK, a trigger that raises, a value too long, a foreign key to another
    table) is isolated to its user by retrying the rest without it (savepoints, halving the
    batch): that user is reported with the database's message and SQLSTATE, the others are
    written. Errors that are not about a row (a lost connection, permission denied, a
    timeout) propagate and stop the run."""
    ids = batch.ids
    created: dict[str, list[str]] = {}
    not_provisioned: list[NotProvisioned] = []
    #: Users whose row of a table was not written for a reason the plan could not predict:
    #: their children in this batch are not attempted (the foreign key would fail).
    failed: dict[str, dict[uuid.UUID, str]] = {}
    with connection.cursor() as cursor:
        if batch.missing_from is None:
            # Ids given by a person or a command may name nobody; candidates always exist.
            cursor.execute(statements.existing_users(), {"ids": ids})
            existing = {row[0] for row in cursor.fetchall()}
            not_provisioned += [NotProvisioned(i, "*", UNKNOWN_USER_REASON) for i in ids if i not in existing]

        for plan in plans:
            created[plan.name] = []
            failed[plan.name] = {}
            orphaned = _children_of_failed(plan, batch.ids_for(plan.name), failed)
            failed[plan.name].update(orphaned)
            not_provisioned += [NotProvisioned(u, plan.name, r) for u, r in orphaned.items()]
            table_ids = [u for u in batch.ids_for(plan.name) if u not in orphaned]
            if not table_ids:
                continue
            params = {"ids": table_ids}
            if plan.table_problem:
                # A table that cannot take a row at all (missing, no key column, a required
                # column the spec leaves empty): report who lacks one.
                cursor.execute(statements.missing_in_batch(plan), params)
                not_provisioned += [
                    NotProvisioned(u, plan.name, r, h)
                    for u, r, h in _explained(plan, cursor.fetchall())
                    if r is not None
                ]
                continue
            cursor.execute(statements.lock_table(plan))
            isolated, rejected = _insert_isolating(plan, table_ids)
            written = sorted(str(u) for u in isolated)
            created[plan.name] = written
            failed[plan.name].update(rejected)
            not_provisioned += [NotProvisioned(u, plan.name, r) for u, r in rejected.items()]
            done = set(written).union(str(u) for u in rejected)
            if batch.missing_from is not None and done.issuperset(str(u) for u in table_ids):
                continue
            # Ask what is still missing and why, only when the insert did not write a row
            # for every one of the batch's users lacking this table.
            cursor.execute(statements.missing_in_batch(plan), {"ids": [u for u in table_ids if u not in rejected]})
            for user_id, reason, held_by in _explained(plan, cursor.fetchall()):
                if reason is None:
                    # No block reason and still missing: it collided on another unique key
                    # (two auth users sharing an email, say).
                    reason = CONFLICT_REASON
                    failed[plan.name][user_id] = reason
                not_provisioned.append(NotProvisioned(user_id, plan.name, reason, held_by))
    return BatchOutcome(
        not_provisioned=not_provisioned,
        users_count=len(ids),
        created_counts={t: len(v) for t, v in created.items()},
        created_sample={t: [uuid.UUID(i) for i in v[:SAMPLE_SIZE]] for t, v in created.items()},
        user_sample=list(ids[:SAMPLE_SIZE]),
        user_ids=list(ids),
        created=created,
        last_user_id=ids[-1] if ids else None,
    )


def _write_range(batch: RangeBatch, plans: list[TablePlan]) -> BatchOutcome:
    """A range batch. Its users (live, lacking some row) are read from auth.users once, into
    `statements.BATCH`; then, parents before children, one `statements.write_range` per
    table and the reasons of the few users it left without a row. The ids written stay in
    the database (`statements.WRITTEN`), for the audit event; only counts and samples come
    back. A row the database rejects sends that table back to the per-row isolation of
    `_insert_isolating`."""
    not_provisioned: list[NotProvisioned] = []
    failed: dict[str, dict[uuid.UUID, str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(statements.window_end(), {"lo": batch.lo, "window": batch.window - 1})
        row = cursor.fetchone()
        end = row[0] if row else LAST_ID
        cursor.execute(statements.drop_batch())
        cursor.execute(statements.create_batch(plans), {"lo": batch.lo, "end": end, "limit": batch.limit})
        cursor.execute(statements.batch_users(), {"sample": SAMPLE_SIZE})
        found, last, users_count, user_sample = cursor.fetchone()
        # Full: it ends at its last user. Otherwise it took the whole window.
        batch.hi = last if found >= batch.limit else end
        batch.exhausted = found < batch.limit and row is None
        if found >= batch.limit:
            cursor.execute(statements.count_between(), {"lo": batch.lo, "hi": batch.hi})
            needed = cursor.fetchone()[0]
            batch.next_window = needed + needed // 4
        else:
            batch.next_window = batch.window * 2
        batch.next_window = max(batch.limit, min(batch.next_window, batch.limit * MAX_WINDOW_PER_USER))
        params = {"lo": batch.lo, "hi": batch.hi}
        if not users_count:
            return BatchOutcome(not_provisioned=[], last_user_id=batch.hi)
        cursor.execute(statements.create_written())
        # Empty already, unless the run is inside a caller's transaction (batches are then
        # savepoints, and the table outlives them).
        cursor.execute(statements.clear_written())
        for plan in plans:
            failed[plan.name] = {}
            if plan.table_problem:
                cursor.execute(statements.batch_missing(plans, plan))
                left = [row[0] for row in cursor.fetchall()]
                if left:
                    cursor.execute(statements.missing_in_batch(plan), {"ids": left})
                    not_provisioned += [
                        NotProvisioned(u, plan.name, r, h)
                        for u, r, h in _explained(plan, cursor.fetchall())
                        if r is not None
                    ]
                continue
            cursor.execute(statements.lock_table(plan))
            left, rejected = _write_range_table(plans, plan, params)
            failed[plan.name].update(rejected)
            not_provisioned += [NotProvisioned(u, plan.name, r) for u, r in rejected.items()]
            orphaned = _children_of_failed(plan, left, failed)
            failed[plan.name].update(orphaned)
            not_provisioned += [NotProvisioned(u, plan.name, r) for u, r in orphaned.items()]
            rest = [u for u in left if u not in orphaned]
            if rest:
                # The insert let the unique indexes find the collisions; only the users it
                # left are explained, by probing those indexes (the other row's owner too).
                cursor.execute(statements.left_after_insert(plan), {"ids": rest})
                for user_id, reason, held_by in _explained(plan, cursor.fetchall()):
                    if reason is None:
                        reason = CONFLICT_REASON
                        failed[plan.name][user_id] = reason
                    not_provisioned.append(NotProvisioned(user_id, plan.name, reason, held_by))
        cursor.execute(statements.written_summary(SAMPLE_SIZE))
        written = {table: (n, list(ids)) for table, n, ids in cursor.fetchall()}
    return BatchOutcome(
        not_provisioned=not_provisioned,
        users_count=users_count,
        created_counts={plan.name: written.get(plan.name, (0, []))[0] for plan in plans},
        created_sample={plan.name: written.get(plan.name, (0, []))[1] for plan in plans},
        user_sample=list(user_sample or []),
        last_user_id=batch.hi,
    )


def _write_range_table(
    plans: list[TablePlan], plan: TablePlan, params: dict
) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    """Write one table for the batch; return (users left without a row, {user: why the
    database rejected the row})."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statements.write_range(plans, plan), params)
            _, left = cursor.fetchone()
            return list(left or []), {}
    except DatabaseError as exc:
        if not about_a_row(exc):
            raise
    with connection.cursor() as cursor:
        cursor.execute(statements.batch_missing(plans, plan))
        ids = [row[0] for row in cursor.fetchall()]
        isolated, rejected = _insert_isolating(plan, ids)
        cursor.execute(statements.keep_written(), {"table": plan.name, "ids": isolated})
    done = set(isolated).union(rejected)
    return [u for u in ids if u not in done], rejected


def _event_rows(batch: BatchOutcome, tables: list[str]) -> dict:
    """The audit event's users and rows: as lists for a batch of given ids, or built in SQL
    from the range batch's written ids (`statements.WRITTEN`), in the same transaction."""
    if batch.user_ids is not None:
        return {"target_user_ids": batch.user_ids, "rows_created": batch.created}
    return {
        "target_user_ids": RawSQL(statements.RANGE_EVENT_TARGETS, ()),  # noqa: S611 - constant SQL
        "rows_created": RawSQL(statements.as_text(statements.range_event_rows(tables)), ()),  # noqa: S611 - composed, no input
    }


def _range_detail(batch: Batch | RangeBatch) -> dict:
    return {"range": [str(batch.lo), str(batch.hi)]} if isinstance(batch, RangeBatch) else {}


def _children_of_failed(
    plan: TablePlan, user_ids: list[uuid.UUID], failed: dict[str, dict[uuid.UUID, str]]
) -> dict[uuid.UUID, str]:
    """The users whose parent row (a same-user foreign key) failed earlier in this batch."""
    wanted = set(user_ids)
    orphaned: dict[uuid.UUID, str] = {}
    for link in plan.same_user_parents:
        for user_id, reason in failed.get(link.parent.name, {}).items():
            if user_id in wanted and user_id not in orphaned:
                orphaned[user_id] = (
                    f"needs its {link.parent.spec.qualified_name} row, which could not be written ({reason})"
                )
    return orphaned


def _insert_isolating(plan: TablePlan, user_ids: list[uuid.UUID]) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    """Insert the plan's rows for `user_ids`; return (users written, {user: why rejected}).

    One INSERT for the whole list; when the database rejects a row, the list is halved and
    each half retried in its own savepoint, down to the user whose row it rejects.
    """
    written: list[uuid.UUID] = []
    rejected: dict[uuid.UUID, str] = {}
    pending = [list(user_ids)]
    statement = statements.insert_missing(plan)
    while pending:
        chunk = pending.pop()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, {"ids": chunk})
                written += [row[0] for row in cursor.fetchall()]
        except DatabaseError as exc:
            if not about_a_row(exc):
                raise
            if len(chunk) == 1:
                rejected[chunk[0]] = row_error(exc)
            else:
                middle = len(chunk) // 2
                pending += [chunk[middle:], chunk[:middle]]
    return written, rejected


#: SQLSTATE classes of errors that are about the session, the schema or the server, never
#: about one row: connection (08), transaction state (25), rollback (40: deadlock,
#: serialization), access and syntax (42: permission denied, undefined table),
#: resources (53, 54), prerequisite state (55: lock not available), operator intervention
#: (57: statement timeout, shutdown), system (58), internal (XX).
_NOT_ABOUT_A_ROW = {"08", "25", "40", "42", "53", "54", "55", "57", "58", "XX", "0A", "F0", "HV"}


def about_a_row(exc: BaseException) -> bool:
    """Did the database reject a row's values (a constraint, a trigger, a type), rather
    than the session or the statement? Only those are isolated to their user."""
    if connection_lost(exc):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return bool(sqlstate) and sqlstate[:2] not in _NOT_ABOUT_A_ROW


def row_error(exc: BaseException) -> str:
    """The database's own message for a rejected row, with its SQLSTATE."""
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or getattr(exc, "sqlstate", None)
    return f"{first_line(exc)} (SQLSTATE {sqlstate})"
