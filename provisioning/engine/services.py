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

from provisioning.actors import Actor
from provisioning.audit.recording import record_denied, record_event
from provisioning.engine import statements
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

    def as_dict(self) -> dict:
        return {"user_id": str(self.user_id), "table": self.table, "reason": self.reason}


@dataclass
class ProvisioningResult:
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

    @property
    def total_created(self) -> int:
        return sum(self.created.values())

    @property
    def ok(self) -> bool:
        return self.not_provisioned_count == 0

    def add_batch(self, batch: BatchOutcome) -> None:
        self.batches += 1
        self.users_processed += len(batch.user_ids)
        if batch.last_user_id is not None:
            self.last_user_id = batch.last_user_id
        for table, ids in batch.created.items():
            self.created[table] = self.created.get(table, 0) + len(ids)
            sample = self.created_sample.setdefault(table, [])
            sample.extend(uuid.UUID(i) for i in ids[: max(0, SAMPLE_SIZE - len(sample))])
        self.not_provisioned_count += len(batch.not_provisioned)
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
        return {
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
    #: The auth user id range (lo, hi] the batch covers, when it is one ("all missing"):
    #: each table is then written with one range statement (`insert_missing_in_range`).
    id_range: tuple[uuid.UUID, uuid.UUID] | None = None

    def ids_for(self, table: str) -> list[uuid.UUID]:
        return self.ids if self.missing_from is None else self.missing_from.get(table, [])


@dataclass
class BatchOutcome:
    user_ids: list[uuid.UUID]
    #: {table: the auth user ids written, as text in id order} (as the audit event keeps them).
    created: dict[str, list[str]]
    not_provisioned: list[NotProvisioned]
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

    def batches(plans: list[TablePlan]) -> Iterator[Batch]:
        after = start_after
        query = statements.next_missing_candidates(plans)
        while True:
            with connection.cursor() as cursor:
                cursor.execute(query, {"after": after, "limit": size})
                candidates = cursor.fetchall()
            if not candidates:
                return
            # Continue after the last candidate, live or not: soft-deleted and anonymous
            # users are skipped here, never provisioned.
            lo, after = after, candidates[-1][0]
            batch = _batch_of_live(candidates, id_range=(lo, after))
            if batch.ids:
                yield batch

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
        for reason, _, ids in blocked:
            room = SAMPLE_SIZE - len(result.not_provisioned)
            result.not_provisioned += [NotProvisioned(u, plan.name, reason) for u in ids[: max(room, 0)]]
    with connection.cursor() as cursor:
        cursor.execute(statements.next_missing_candidates(plans), {"after": uuid.UUID(int=0), "limit": sample_size})
        first = _batch_of_live(cursor.fetchall())
    if first.ids:
        sample = _provision_batch(first, plans, dry_run=True)
        result.created_sample = {t: [uuid.UUID(i) for i in ids] for t, ids in sample.created.items() if ids}
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
                "skipped_columns": result.skipped_columns,
                "preview": True,
            },
            run_id=result.run_id,
        )
    result.audit_event_ids.append(event.pk)
    return result


def _batch_of_live(candidates: list[tuple], id_range: tuple[uuid.UUID, uuid.UUID] | None = None) -> Batch:
    """A Batch from `statements.next_missing_candidates` rows, keeping live users only."""
    live = [(user_id, tables) for user_id, is_live, tables in candidates if is_live]
    missing_from: dict[str, list[uuid.UUID]] = {}
    for user_id, tables in live:
        for table in tables:
            missing_from.setdefault(table, []).append(user_id)
    return Batch([user_id for user_id, _ in live], missing_from, id_range)


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
    batches: Callable[[list[TablePlan]], Iterable[Batch]],
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
                if not dry_run:
                    event = record_event(
                        actor=actor,
                        action=action,
                        outcome=Outcome.PARTIAL if batch.not_provisioned else Outcome.SUCCEEDED,
                        tables=table_names,
                        target_user_ids=batch.user_ids,
                        rows_created=batch.created,
                        not_provisioned=[n.as_dict() for n in batch.not_provisioned],
                        detail={"batch": result.batches + 1, "skipped_columns": result.skipped_columns},
                        run_id=result.run_id,
                    )
                    result.audit_event_ids.append(event.pk)
        except DatabaseError as exc:
            message = first_line(exc)
            with transaction.atomic():
                event = record_event(
                    actor=actor,
                    action=action,
                    outcome=Outcome.FAILED,
                    tables=table_names,
                    target_user_ids=ids,
                    detail={"batch": result.batches + 1, "error": message, "dry_run": dry_run},
                    run_id=result.run_id,
                )
            result.audit_event_ids.append(event.pk)
            raise ProvisioningFailed(message, result) from exc
        result.add_batch(batch)
        if dry_run and len(dry_run_targets) < settings.PROVISIONING_BATCH_SIZE:
            dry_run_targets.extend(str(i) for i in ids[: settings.PROVISIONING_BATCH_SIZE - len(dry_run_targets)])
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
                    "skipped_columns": result.skipped_columns,
                },
                run_id=result.run_id,
            )
        result.audit_event_ids.append(event.pk)
    return result


def _provision_batch(batch: Batch, plans: list[TablePlan], *, dry_run: bool) -> BatchOutcome:
    """One batch, inside the caller's transaction. A dry run is the real run inside a
    savepoint that is rolled back: what it reports is exactly what a real run would write,
    CHECK constraints, triggers and foreign keys included."""
    if not dry_run:
        return _write_batch(batch, plans)
    try:
        with transaction.atomic():
            outcome = _write_batch(batch, plans)
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
                not_provisioned += [NotProvisioned(u, plan.name, r) for u, r in cursor.fetchall() if r is not None]
                continue
            cursor.execute(statements.lock_table(plan))
            written, rejected = _insert_range(plan, batch), {}
            if written is None:
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
            # The users written stay peers: an earlier user's collision names them.
            cursor.execute(
                statements.missing_in_batch(plan, peers=True),
                {
                    "ids": [u for u in table_ids if str(u) not in done],
                    "peers": [u for u in table_ids if u not in rejected],
                },
            )
            for user_id, reason in cursor.fetchall():
                if reason is None:
                    # No block reason and still missing: it collided on another unique key
                    # (two auth users sharing an email, say).
                    reason = CONFLICT_REASON
                    failed[plan.name][user_id] = reason
                not_provisioned.append(NotProvisioned(user_id, plan.name, reason))
    # A range batch also writes users who signed up in its range after it was chosen: they
    # are targets of its audit event too, so that their history shows the row's origin.
    late = {u for rows in created.values() for u in rows}.difference(str(i) for i in ids)
    return BatchOutcome(
        user_ids=list(ids) + [uuid.UUID(u) for u in sorted(late)],
        created=created,
        not_provisioned=not_provisioned,
        last_user_id=batch.id_range[1] if batch.id_range else (ids[-1] if ids else None),
    )


def _insert_range(plan: TablePlan, batch: Batch) -> list[str] | None:
    """Write the table for the batch's whole id range in one statement; None when the
    batch is no range or the database rejected a row (the caller then isolates it)."""
    if batch.id_range is None:
        return None
    lo, hi = batch.id_range
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statements.insert_missing_in_range(plan), {"lo": lo, "hi": hi})
            (written,) = cursor.fetchone()
            return written.split(",") if written else []
    except DatabaseError as exc:
        if not about_a_row(exc):
            raise
        return None


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
