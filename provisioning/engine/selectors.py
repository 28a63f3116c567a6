"""Reads: status querysets, counts, what is missing. Nothing here writes."""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from psycopg import sql as psql

from provisioning.engine import catalog, confirmation, ledger, remedies, statements
from provisioning.engine import plans as plans_module
from provisioning.ids import clean_typed, parse_uuid
from provisioning.models import AuditEvent, AuthUser, LedgerState
from provisioning.spec import SPEC, TABLE_NAMES, select_tables, table_spec

_STATUS_NAMES = {"users": "has_app_user", "profiles": "has_profile", "wallets": "has_wallet"}


def status_field(table: str) -> str:
    """The annotation saying whether an auth user has a row in `table`."""
    return _STATUS_NAMES.get(table, f"has_{table}")


def has_row(table: str, after: uuid.UUID | None = None) -> RawSQL:
    """Does the auth user (the outer query's row) have a row in the spec table `table`?

    `after`: the outer query reads only auth users whose id is above it (a list page's
    cursor); repeating that bound on the table's key lets PostgreSQL start reading the
    table there too (1 ms instead of 97 ms for a page in the middle of a million users).
    Without the outer bound the answer would be wrong for the users below it.

    The table is the spec's, by its schema, name and key column (never a model's table).
    """
    spec = table_spec(table)
    name = connection.ops.quote_name
    # Names only, each quoted as an identifier (the spec file's names are checked plain SQL
    # names too); the bound is a parameter.
    return RawSQL(  # noqa: S611
        f"EXISTS (SELECT 1 FROM {name(spec.schema)}.{name(spec.name)} x "
        f'WHERE x.{name(spec.key)} = "auth"."users"."id"'
        + (f" AND x.{name(spec.key)} > %s)" if after is not None else ")"),
        (after,) if after is not None else (),
        output_field=BooleanField(),
    )


def annotate_statuses(users: list[AuthUser]) -> list[AuthUser]:
    """Set has_app_user / has_profile / has_wallet (has_<table> for a table a spec file
    adds) on a page of auth users: one query for the whole page, whatever its size.

    A list page reads these after it is cut to its 50 rows, not as EXISTS subqueries in the
    list's own query: those run for every row the database walks past (a deep page's
    offset included) and, where the app table has no index on its key column, each is a
    scan of the table (1.4 s for an unfiltered page at a million users).
    """
    ids = [user.pk for user in users]
    present: set[tuple[str, uuid.UUID]] = set()
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                psql.SQL(" UNION ALL ").join(
                    psql.SQL("SELECT {name}, {key} FROM {table} WHERE {key} = ANY(%(ids)s)").format(
                        name=psql.Literal(spec.name), key=psql.Identifier(spec.key), table=spec.identifier()
                    )
                    for spec in SPEC
                ),
                {"ids": ids},
            )
            present = set(cursor.fetchall())
    for user in users:
        for spec in SPEC:
            setattr(user, status_field(spec.name), (spec.name, user.pk) in present)
    return users


def population(queryset: QuerySet | None = None) -> QuerySet:
    """Live sign-ups: not soft-deleted, not anonymous (the default view and bulk scope)."""
    queryset = AuthUser.objects.all() if queryset is None else queryset
    return queryset.filter(deleted_at__isnull=True, is_anonymous=False)


def with_status(queryset: QuerySet | None = None) -> QuerySet:
    """Annotate auth users with has_app_user / has_profile / has_wallet (and has_<table> for
    a table a spec file adds): EXISTS subqueries."""
    queryset = AuthUser.objects.all() if queryset is None else queryset
    return queryset.annotate(**{status_field(t): has_row(t) for t in TABLE_NAMES})


def missing_q(table: str, after: uuid.UUID | None = None) -> Q:
    """Auth users lacking a row in `table` (`after`: see `has_row`)."""
    return ~Q(has_row(table, after))


def keys_indexed() -> bool:
    """Does every spec table have a usable index (valid, not partial) leading with its key
    column? Then a per-user probe is an index lookup; otherwise it is a table scan. One
    query (`catalog.key_indexed`)."""
    return catalog.key_indexed([(spec.schema, spec.name, spec.key) for spec in SPEC])


def _coverage_q(*, complete: bool, after: uuid.UUID | None = None) -> Q:
    plans = plans_module.plan_tables(SPEC)
    subquery = statements.as_text(statements.users_by_coverage(plans, complete=complete, after=after))
    return Q(pk__in=RawSQL(subquery, ()))  # noqa: S611 - composed with psycopg.sql, no input in it


def missing_any_q(after: uuid.UUID | None = None) -> Q:
    """Auth users lacking a row in any spec table. With every key column indexed: one
    index probe per table for each user the list walks (a page costs tens of milliseconds);
    without: each table read once (`statements.users_by_coverage`). `after`: see `has_row`."""
    if not keys_indexed():
        return _coverage_q(complete=False, after=after)
    q = Q()
    for table in TABLE_NAMES:
        q |= missing_q(table, after)
    return q


def complete_q(after: uuid.UUID | None = None) -> Q:
    """Auth users with a row in every spec table (the negation of `missing_any_q`)."""
    if not keys_indexed():
        return _coverage_q(complete=True, after=after)
    return ~missing_any_q(after)


def users_missing(table: str | None = None) -> QuerySet:
    """Population users missing a row in `table` (any app table when None)."""
    return population().filter(missing_any_q() if table is None else missing_q(table))


@dataclass
class StatusCounts:
    auth_users: int
    missing: dict[str, int]
    missing_any: int
    #: Missing rows provisioning cannot write, by "table: reason" (users blocked in that
    #: table: one user may be counted under several tables).
    blocked: dict[str, int] = field(default_factory=dict)
    blocked_sample: list[dict] = field(default_factory=list)
    #: Users who cannot be provisioned, each counted once.
    blocked_users: int = 0
    #: Where provisioning waits for confirmation: users missing rows who are unconfirmed
    #: (expected), and the gate's description; None and "" elsewhere.
    awaiting_confirmation: int | None = None
    gate: str = ""
    #: When the figures come from the provisioning ledger: the time it was last caught up
    #: ("as of"); None when they were counted live.
    as_of: object = None

    @property
    def fully_provisioned(self) -> int:
        return self.auth_users - self.missing_any

    def as_dict(self) -> dict:
        return {
            "auth_users": self.auth_users,
            "fully_provisioned": self.fully_provisioned,
            "missing": self.missing,
            "missing_any": self.missing_any,
            "cannot_provision": self.blocked,
            "cannot_provision_users": self.blocked_users,
            "cannot_provision_sample": self.blocked_sample,
            "awaiting_confirmation": self.awaiting_confirmation,
            "confirmation_gate": self.gate,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "source": "ledger" if self.as_of else "live",
        }


def count_missing_any(tables: list[str] | tuple[str, ...] | None = None) -> int:
    """Population users lacking a row in any of `tables` (all when None): one pass over
    auth.users (`statements.status_counts`)."""
    with connection.cursor() as cursor:
        cursor.execute(statements.status_counts(plans_module.plan_tables(select_tables(tables))))
        return cursor.fetchone()[-1]


def status_counts(*, sample: int = 20) -> StatusCounts:
    """Counts for the population: live users, missing per table, missing any (one pass over
    auth.users, `statements.status_counts`), and who cannot be provisioned, by reason."""
    plans = plans_module.plan_tables(SPEC)
    gate = confirmation.gate()
    row = _one_row(statements.status_counts(plans, awaiting=gate.awaiting_sql() if gate else None))
    live = row.pop(0)
    return _status(plans, gate, row, live=live, blocked=blocked_summary(sample=sample, plans=plans))


def _one_row(statement) -> list:
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return list(cursor.fetchone())


def _status(plans, gate, row: list, *, live: int, blocked: Blocked, as_of=None) -> StatusCounts:
    """StatusCounts from a counts row (missing per table, missing any, then unconfirmed
    ones where provisioning waits for confirmation), live or from the ledger."""
    awaiting = row.pop() if gate else None
    *per_table, missing_any = row
    return StatusCounts(
        auth_users=live,
        missing={plan.name: n for plan, n in zip(plans, per_table, strict=True)},
        missing_any=missing_any,
        blocked=blocked.rows,
        blocked_sample=blocked.sample,
        blocked_users=blocked.users,
        awaiting_confirmation=awaiting,
        gate=gate.description if gate else "",
        as_of=as_of,
    )


def missing_by_confirmation(gate: confirmation.Gate) -> tuple[int, int]:
    """(live users missing any row, how many of them are unconfirmed): one pass over
    auth.users, for where provisioning waits for confirmation."""

    def compute() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(statements.status_counts(plans_module.plan_tables(SPEC), awaiting=gate.awaiting_sql()))
            *_, missing_any, awaiting = cursor.fetchone()
        return missing_any, awaiting

    return _shared(("missing_by_confirmation", gate.column), compute)


#: Whole-population reads shared within `shared_reads()` (None outside it).
_SHARED: ContextVar[dict | None] = ContextVar("eloity_shared_reads", default=None)


@contextmanager
def shared_reads():
    """Inside it, the reads of the whole population (`status_counts_by_week`,
    `cannot_provision`) run once and are shared: the home page's figures and its health
    panel need the same ones (at a million users each costs one to two seconds)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: tuple, compute):
    memo = _SHARED.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def status_counts_by_week(tz: str, *, plans=None) -> dict:
    """{week (its Monday, in time zone `tz`, None without a sign-up time): (live users,
    {table: missing}, missing any)}: `status_counts` grouped by week, in the same one pass.
    The home page's chart and the health page's coverage check both read this."""
    plans = plans if plans is not None else plans_module.plan_tables(SPEC)

    def count() -> list:
        with connection.cursor() as cursor:
            cursor.execute(statements.status_counts(plans, by_week=True), {"tz": tz})
            return cursor.fetchall()

    rows = _shared(("by_week", tz, tuple(p.name for p in plans)), count)
    return {
        week: (live, {plan.name: n for plan, n in zip(plans, per_table, strict=True)}, missing_any)
        for week, live, *per_table, missing_any in rows
    }


def blocked_by_reason(plan, *, sample: int) -> list[tuple[str, int, list[uuid.UUID]]]:
    """(reason, count, first `sample` user ids) for one table's live users that lack a row
    provisioning cannot write. No query at all where nothing can block a live user."""
    if not plan.may_block_live_users:
        return []
    with connection.cursor() as cursor:
        cursor.execute(statements.blocked_by_reason(plan), {"limit": max(sample, 1)})
        return [(reason, n, list(ids or [])[:sample]) for reason, n, ids in cursor.fetchall()]


#: The most users `cannot_provision` lists (a larger sample is worked out, then cut).
CANNOT_PROVISION_SAMPLE = 20


@dataclass(frozen=True)
class Blocked:
    """Population users who miss a row provisioning cannot write.

    `users` counts each of them once. `rows` counts, per "table: reason", the users blocked
    there: a user blocked in three tables is in three of them, so these add up to missing
    rows, not to people. `sample`: the first users, each with its table and reason.
    """

    rows: dict[str, int]
    users: int
    sample: list[dict]


def blocked_summary(*, sample: int = 20, plans=None) -> Blocked:
    """Who cannot be provisioned: users (each once), rows by table and reason, and the first
    `sample` of them; one statement, counted in SQL (`statements.blocked_summary`), so memory
    stays flat. Shared within `shared_reads` (then at most CANNOT_PROVISION_SAMPLE listed)."""
    plans = plans or plans_module.plan_tables(SPEC)
    if _SHARED.get() is None or sample > CANNOT_PROVISION_SAMPLE:
        return _blocked_summary(sample=sample, plans=plans)
    found = _shared(
        ("cannot", tuple(p.name for p in plans)),
        lambda: _blocked_summary(sample=CANNOT_PROVISION_SAMPLE, plans=plans),
    )
    return Blocked(rows=found.rows, users=found.users, sample=found.sample[:sample])


def cannot_provision(*, sample: int = 20, plans=None) -> tuple[dict[str, int], list[dict]]:
    """`blocked_summary`'s rows by "table: reason" (users blocked there; one user may be in
    several) and its sample: for callers that count rows, not people."""
    found = blocked_summary(sample=sample, plans=plans)
    return found.rows, found.sample


def _blocked_summary(*, sample: int, plans) -> Blocked:
    counts: dict[str, int] = {}
    wanted: list[tuple[uuid.UUID, str, str]] = []
    users = 0
    with connection.cursor() as cursor:
        cursor.execute(statements.blocked_summary(plans), {"limit": max(sample, 1)})
        for index, reason, n, ids in cursor.fetchall():
            if index is None:
                users = n
                continue
            name = plans[index].name
            counts[f"{name}: {reason}"] = n
            wanted += [(user_id, name, reason) for user_id in list(ids or [])[:sample]]
    wanted = wanted[:sample]
    return Blocked(rows=counts, users=users, sample=_blocked_sample(wanted))


def _blocked_sample(wanted: list[tuple]) -> list[dict]:
    """(user id, table, reason) as the sample rows pages and reports show: the person named
    as everywhere (email, else phone), two queries for the whole sample."""
    people = person_labels([w[0] for w in wanted])
    emails = dict(AuthUser.objects.filter(pk__in=[w[0] for w in wanted]).values_list("pk", "email"))
    return [
        {
            "user_id": str(user_id),
            "email": emails.get(user_id),
            "person": people.get(str(user_id), str(user_id)),
            "table": table,
            "reason": reason,
        }
        for user_id, table, reason in wanted
    ]


def cannot_be_provisioned_q() -> Q:
    """Population users lacking a row that provisioning cannot write (any table): the
    "Cannot be provisioned" filter. One subquery; nothing is read into Python."""
    plans = plans_module.plan_tables(SPEC)
    subquery = statements.as_text(statements.blocked_users(plans))
    return Q(pk__in=RawSQL(subquery, ()))  # noqa: S611 - composed with psycopg.sql, no input in it


def block_reasons(user_id: uuid.UUID) -> dict[str, str | None]:
    """For each spec table the user lacks a row in: why provisioning cannot write it, or
    None when it can (the same reasons a dry run gives, without writing anything)."""
    reasons: dict[str, str | None] = {}
    with connection.cursor() as cursor:
        for plan in plans_module.plan_tables(SPEC):
            cursor.execute(statements.missing_in_batch(plan), {"ids": [user_id]})
            for _, reason, *_holders in cursor.fetchall():
                reasons[plan.name] = reason
    return reasons


def next_steps(reasons: dict[str, str | None]) -> list[dict]:
    """What can be done about a user's blocked rows (`block_reasons`), where there is a
    known way: for a value the auth user lacks that a NOT NULL column needs (a phone-only
    sign-up and public.users.email, say), what to ask the person for, and the SQL that lets
    the column be empty (for an administrator to review: the app may rely on it)."""
    blocked = [reason for reason in reasons.values() if reason]
    steps = []
    for plan in plans_module.plan_tables(SPEC):
        for blocker in plan.blockers:
            if blocker.kind != "null" or not any(blocker.reason in reason for reason in blocked):
                continue
            (column,) = blocker.columns
            steps.append(
                {
                    "ask": remedies.asked_for(plan.columns[column]),
                    "column": f"{plan.spec.qualified_name}.{column}",
                    "sql": remedies.drop_not_null(plan, column),
                }
            )
    return steps


def person_labels(user_ids) -> dict[str, str]:
    """{user id (text): how a person is named on a page}: the email, else the phone, else
    "anonymous sign-up"; ids of no auth user are left out. One query."""
    ids = [i for i in (parse_uuid(str(u)) for u in user_ids) if i is not None]
    found = AuthUser.objects.filter(pk__in=ids).values_list("pk", "email", "phone", "is_anonymous")
    return {
        str(pk): email or (f"phone {phone}" if phone else "anonymous sign-up" if anonymous else "no email or phone")
        for pk, email, phone, anonymous in found
    }


#: How many matches an ambiguous identifier lists.
AMBIGUOUS_SHOWN = 10


def resolve_users(identifiers: list[str]) -> tuple[list[uuid.UUID], list[str], list[str]]:
    """Map what the search box takes to auth user ids, one user per identifier: an id, an
    email (case-insensitive, exact first), the 8-character short id the pages show, a phone
    number as shown, a part of an email. Returns (ids, unknown identifiers, ambiguous ones,
    each naming its matches): an identifier several auth users match resolves to none of
    them, since acting on "the first" could fix the wrong account. Reads only."""
    found: list[uuid.UUID] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for ident in identifiers:
        cleaned = clean_typed(ident)
        as_uuid = parse_uuid(cleaned)
        if as_uuid is not None:
            query = AuthUser.objects.filter(pk=as_uuid)
        elif not cleaned:
            query = AuthUser.objects.none()
        else:
            # An exact email first: "ada@example.com" is not also "bada@example.com".
            query = AuthUser.objects.filter(email__iexact=cleaned)
            if not query.exists():
                query = search_auth_users(AuthUser.objects.all(), cleaned)
        matches = list(query.order_by("pk").values_list("id", flat=True)[: AMBIGUOUS_SHOWN + 1])
        if not matches:
            unknown.append(ident)
        elif len(matches) > 1:
            total = query.count() if len(matches) > AMBIGUOUS_SHOWN else len(matches)
            labels = person_labels(matches[:AMBIGUOUS_SHOWN])
            shown = ", ".join(f"{pk} ({labels.get(str(pk), 'no email or phone')})" for pk in matches[:AMBIGUOUS_SHOWN])
            more = f" and {total - AMBIGUOUS_SHOWN} more" if total > AMBIGUOUS_SHOWN else ""
            ambiguous.append(f"{ident} matches {total} auth users: {shown}{more}; give the id")
        elif matches[0] not in found:
            found.append(matches[0])
    return found, unknown, ambiguous


def unresolved_message(unknown: list[str], ambiguous: list[str]) -> str:
    """One line for the identifiers `resolve_users` could not map to one user."""
    parts = [f"unknown user: {', '.join(unknown)}"] if unknown else []
    return "; ".join([*parts, *ambiguous])


def audit_events_for(user_id: uuid.UUID) -> QuerySet:
    return AuditEvent.objects.filter(target_user_ids__contains=[user_id])


def estimated_auth_users() -> int:
    """The planner's estimate of auth.users' size (no scan): pg_class.reltuples."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'auth.users'::regclass")
        row = cursor.fetchone()
    return max(int(row[0]), 0) if row else 0


#: The short id the pages show: the first 8 hex digits of a user id.
SHORT_ID = re.compile(r"[0-9a-fA-F]{8}\Z")


def identity_emails_readable() -> bool:
    """Whether this project's Auth has auth.identities.email (Auth since late 2022) and the
    dashboard may read it: the search then also finds an identity's email."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(bool_and(has_column_privilege(a.attrelid, a.attnum, 'SELECT')"
            " AND has_column_privilege(a.attrelid, 'user_id', 'SELECT')), false)"
            " FROM pg_attribute a WHERE a.attrelid = to_regclass('auth.identities')"
            " AND a.attname = 'email' AND NOT a.attisdropped"
        )
        return bool(cursor.fetchone()[0])


def search_auth_users(queryset: QuerySet, term: str) -> QuerySet:
    """What the search box finds: an exact id (a UUID); the 8-character short id the pages
    show (an index range over the primary key, not a scan); a phone number as shown (its
    digits, any `+`, spaces or dashes ignored); or a case-insensitive part of the email or
    of an identity's email (auth.identities, where this project's Auth has it).

    NUL bytes (PostgreSQL rejects them in text) are dropped and the term is capped at an
    email's length, so odd input narrows the list instead of failing.
    """
    term = clean_typed(term)
    if not term:
        return queryset
    as_uuid = parse_uuid(term)
    if as_uuid is not None:
        return queryset.filter(pk=as_uuid)
    match = Q(email__icontains=term)
    if identity_emails_readable():
        # An SSO or OAuth user's email may be only on an identity (auth.users.email empty
        # or another address): identities.email is lower(identity_data->>'email').
        pattern = "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        match |= Q(pk__in=RawSQL("SELECT user_id FROM auth.identities WHERE email LIKE %s", (pattern,)))
    if SHORT_ID.match(term):
        low = uuid.UUID(term.lower() + "0" * 24)
        match |= Q(pk__gte=low, pk__lte=uuid.UUID(term.lower() + "f" * 24))
    digits = re.sub(r"[\s()+.-]", "", term)
    if digits.isdigit() and len(digits) >= 4:
        match |= Q(phone__contains=digits)
    return queryset.filter(match)


def ledger_state(*, guarded: bool = False):
    """The provisioning ledger's state (engine/ledger.py), or None while there is none or it
    was built for another spec or schema (then the counts are live). `guarded`: None too
    where the role cannot read it (the doctor's checks may run as the app's role); that
    costs a savepoint, so the pages, which run as the dashboard's own role, do without."""

    def read():
        if not guarded:
            return LedgerState.objects.filter(pk=1).first()
        try:
            with transaction.atomic():
                return LedgerState.objects.filter(pk=1).first()
        except DatabaseError:
            return None

    state = _shared(("ledger_state", guarded), read)
    if state is None or state.fingerprint != ledger.fingerprint(plans_module.plan_tables(SPEC)):
        return None
    return state


def freshness(state=None) -> str:
    """How fresh the counts are, for a page or a check: "from the provisioning ledger, as
    of 14:02:10" (its last catch-up, local time), or "counted live"."""
    from django.utils import timezone

    state = state if state is not None else ledger_state(guarded=True)
    if state is None:
        return "counted live"
    return f"from the provisioning ledger, as of {timezone.localtime(state.caught_up_at):%H:%M:%S}"


def current_blocked_summary(*, sample: int = 20, plans=None) -> Blocked:
    """Who cannot be provisioned: from the ledger where there is one, else live."""
    if ledger_state(guarded=True) is not None:
        return ledger_blocked_summary(sample=sample, plans=plans)
    return blocked_summary(sample=sample, plans=plans)


def current_counts_by_week(tz: str, *, plans=None) -> dict:
    """Missing rows by week of sign-up: from the ledger where there is one, else live."""
    if ledger_state(guarded=True) is not None:
        return ledger_counts_by_week(tz, plans=plans)
    return status_counts_by_week(tz, plans=plans)


def current_missing_by_confirmation(gate: confirmation.Gate) -> tuple[int, int]:
    """`missing_by_confirmation` from the ledger where there is one (the ledger's users
    joined to auth.users by key), else live."""
    if ledger_state(guarded=True) is None:
        return missing_by_confirmation(gate)
    with connection.cursor() as cursor:
        cursor.execute(ledger.counts(plans_module.plan_tables(SPEC), awaiting=gate.awaiting_sql()))
        *_, missing_any, awaiting = cursor.fetchone()
    return missing_any, awaiting


def ledger_status_counts(*, sample: int = 20) -> StatusCounts:
    """`status_counts` read from the provisioning ledger, as of its last catch-up (the live
    sign-ups counted then, the rest from the ledger alone). Falls back to `status_counts`
    (live, as_of None) while there is no ledger for this spec."""
    state = ledger_state()
    if state is None:
        return status_counts(sample=sample)
    plans = plans_module.plan_tables(SPEC)
    gate = confirmation.gate()
    row = _one_row(ledger.counts(plans, awaiting=gate.awaiting_sql() if gate else None))
    blocked = ledger_blocked_summary(sample=sample, plans=plans)
    return _status(plans, gate, row, live=state.live_users, blocked=blocked, as_of=state.caught_up_at)


def ledger_blocked_summary(*, sample: int = 20, plans=None) -> Blocked:
    """`blocked_summary` read from the provisioning ledger (call it where `ledger_state()`
    is not None): the same rows, users and sample, in the same order."""
    plans = plans or plans_module.plan_tables(SPEC)
    with connection.cursor() as cursor:
        cursor.execute(ledger.blocked(), {"limit": max(sample, 1)})
        found = cursor.fetchall()
    counts: dict[str, int] = {}
    wanted: list[tuple[uuid.UUID, str, str]] = []
    users = 0
    order = {plan.name: i for i, plan in enumerate(plans)}
    for table, reason, n, ids in sorted(
        found, key=lambda r: (order.get(r[0], len(order)) if r[0] else 99, -r[2], r[1] or "")
    ):
        if table is None:
            users = n
            continue
        counts[f"{table}: {reason}"] = n
        wanted += [(user_id, table, reason) for user_id in list(ids or [])[:sample]]
    wanted = wanted[:sample] if sample else []
    return Blocked(rows=counts, users=users, sample=_blocked_sample(wanted))


def ledger_counts_by_week(tz: str, *, plans=None) -> dict:
    """`status_counts_by_week` with the missing counts read from the provisioning ledger
    (sign-ups per week are still counted from auth.users, without a join)."""
    plans = plans if plans is not None else plans_module.plan_tables(SPEC)

    def count() -> list:
        with connection.cursor() as cursor:
            cursor.execute(ledger.counts_by_week(plans), {"tz": tz})
            return cursor.fetchall()

    rows = _shared(("ledger_by_week", tz, tuple(p.name for p in plans)), count)
    return {
        week: (live, {plan.name: n for plan, n in zip(plans, per_table, strict=True)}, missing_any)
        for week, live, *per_table, missing_any in rows
    }


def _in_ledger(*, blocked: bool = False) -> Q:
    """The auth user (the outer query's row) has a ledger entry (`blocked`: one with a row
    provisioning cannot write): a probe of the ledger's primary key per user walked."""
    condition = " AND NOT (l.reasons = '{}'::jsonb)" if blocked else ""
    return Q(
        RawSQL(  # noqa: S611 - fixed text, no input in it
            f'EXISTS (SELECT 1 FROM "{ledger.LedgerEntry._meta.db_table}" l WHERE l.user_id = "auth"."users"."id"'
            f"{condition})",
            (),
            output_field=BooleanField(),
        )
    )


def _signed_up_since(state) -> Q:
    """Sign-ups the ledger may not have seen yet: since its watermark, less `ledger.OVERLAP`."""
    if state.watermark_created_at is None:
        return Q(created_at__isnull=False)
    return Q(created_at__gte=state.watermark_created_at - ledger.OVERLAP)


def _missing_now(after: uuid.UUID | None) -> Q:
    q = Q()
    for table in TABLE_NAMES:
        q |= missing_q(table, after)
    return q


def ledger_list_q(value: str, state, after: uuid.UUID | None = None) -> Q:
    """The list's "Missing anything" (`missing_any`), "Fully provisioned" (`complete`) and
    "Cannot be provisioned" (`cannot`) from the provisioning ledger `state`: its entries
    plus the sign-ups since its watermark, walked in the list's order, so a page stops
    after its rows. Where every key column is indexed, each user walked is also checked
    live (a probe per table): a user fixed since the ledger's last catch-up is not listed.
    Without indexes a probe would be a scan of the table per user: the page's rows are
    then shown as they are now (`annotate_statuses`) and the page says how many changed."""
    probe = keys_indexed()
    since = _signed_up_since(state)
    if value == "missing_any":
        if probe:
            return (_in_ledger() | since) & _missing_now(after)
        return _in_ledger() | (since & _missing_now(after))
    if value == "cannot":
        return _in_ledger(blocked=True) & _missing_now(after) if probe else _in_ledger(blocked=True)
    if value == "complete":
        older = ~since | Q(created_at__isnull=True)
        q = ~_in_ledger() & (older | ~_missing_now(after))
        return q & ~_missing_now(after) if probe else q
    raise ValueError(value)
