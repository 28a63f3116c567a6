"""The dashboard's own index of who each auth event is about (issue 25, "Speed").

`auth.audit_log_entries` has no index on the user, its `payload` is `json`, and Supabase no
longer lets a project add an index to an `auth` table. So the dashboard keeps, in its own
schema, one `AuthEventIndex` row per (entry, user the entry is about), keyed (user_id,
created_at, entry_id): a user's timeline is a range of that key, and only the entries on
the page are then fetched from `auth` by their primary key. `AuthEventIndexState` (one row)
holds the cursor: the newest entry read, in (created_at, id) order.

Who an entry is about (GoTrue, `internal/models/audit_log_entry.go` and
`internal/api/admin.go`): `payload.actor_id`, the user who acted; and `payload.traits.user_id`,
the user an admin-API action was done to (the actor is then the service role, with the nil
UUID, which is not indexed). Values are read as the JSON text of the field
(`(payload -> 'actor_id')::text`) and checked against a UUID pattern before any cast, never
decoded with `->>`. A payload that is not a JSON object is about every UUID written in it
(the page shows it as stored). So is one PostgreSQL cannot decode: a `json` column accepts
`\u0000` and lone surrogate escapes, and any operator that reads such a payload raises; the
index recognises them in the payload's text (UNDECODABLE) and never parses them. So no payload
can fail a statement. (An id written with JSON escapes is not recognised.)

How it is kept:
- `build` (`manage.py auth_events_index --rebuild`, and the first catch-up): one
  `INSERT ... SELECT` over the whole table, in one transaction; nothing passes through
  Python, so the command's memory stays flat at any size. Readers keep the old index until
  it commits.
- `catch_up` (every minute under `make run`): one `INSERT ... SELECT` of the entries with
  `created_at >= watermark - OVERLAP`, `ON CONFLICT DO NOTHING`. Entry ids are random UUIDs,
  so the cursor is (created_at, id); GoTrue sets created_at when it writes the entry, inside
  a transaction that may commit a moment later, so an entry can appear with a created_at
  older than entries already read: the overlap re-reads the last OVERLAP. An entry committed
  later than that after its created_at waits for the next rebuild. created_at has no index
  either, so each catch-up is one sequential read of the table (not one per batch: batches
  in cursor order would each read it again).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from psycopg import sql

from provisioning.account.catalog import auth_columns
from provisioning.models import AuthEventIndex, AuthEventIndexState

INDEX = sql.Identifier(AuthEventIndex._meta.db_table)
ENTRIES = sql.Identifier("auth", "audit_log_entries")
#: How far behind the watermark each catch-up reads again: entries committed late.
OVERLAP = dt.timedelta(minutes=5)
NIL_UUID = "00000000-0000-0000-0000-000000000000"
_HEX = "[0-9a-fA-F]"
UUID_TEXT = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
#: A JSON string holding exactly a UUID, as `(payload -> key)::text` returns it.
QUOTED_UUID = f'^"{UUID_TEXT}"$'
#: A JSON string holding a plain action name.
QUOTED_NAME = '^"[A-Za-z0-9_]{1,64}"$'
#: Escapes a `json` value may hold that PostgreSQL cannot decode (\u0000, surrogates): a
#: payload holding one is read as text only. Go's encoder writes neither.
UNDECODABLE = r"\\u(0000|[dD][89a-fA-F])"
NEEDED = {"id", "payload", "created_at"}


class IndexUnavailable(Exception):
    """This project's audit_log_entries cannot be indexed (missing, unreadable, or a payload
    column that is not json/jsonb)."""


def payload_function_prefix() -> str:
    """'json' or 'jsonb', after the payload column's type; raises IndexUnavailable."""
    if not NEEDED <= auth_columns().get("audit_log_entries", set()):
        raise IndexUnavailable("auth.audit_log_entries (id, payload, created_at) is missing or not readable")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'auth.audit_log_entries'::regclass AND attname = 'payload' AND NOT attisdropped"
        )
        (kind,) = cursor.fetchone()
    if kind not in ("json", "jsonb"):
        raise IndexUnavailable(f"auth.audit_log_entries.payload is {kind}, not json: it cannot be indexed")
    return kind


def index_rows(prefix: str, where: sql.Composable, *, whole: bool = False) -> sql.Composed:
    """INSERT the index rows of the entries matching `where` (a condition on entry `e`),
    skipping rows already there; RETURNING (created_at, entry_id) of the rows written. With
    `whole` (a build), the rows are written in key order, which makes filling the primary
    key a walk along its right edge instead of a random write per row, and return nothing."""
    return sql.SQL(
        "WITH e AS ("
        " SELECT e.id, coalesce(e.created_at, '-infinity') AS created_at, e.payload,"
        "  CASE WHEN e.payload::text !~ {undecodable} THEN {typeof}(e.payload) = 'object' END AS is_object"
        " FROM {entries} e WHERE {where}"
        "), f AS ("
        " SELECT e.id, e.created_at,"
        "  CASE WHEN e.is_object THEN (e.payload -> 'actor_id')::text END AS actor,"
        "  CASE WHEN e.is_object THEN (e.payload -> 'traits' -> 'user_id')::text END AS target,"
        "  CASE WHEN e.is_object THEN (e.payload -> 'action')::text END AS action,"
        "  CASE WHEN e.is_object IS NOT TRUE THEN e.payload::text END AS raw"
        " FROM e"
        "), about AS ("
        " SELECT f.id, f.created_at, substr(a.who, 2, 36)::uuid AS user_id,"
        "  CASE WHEN f.action ~ {name} THEN substr(f.action, 2, length(f.action) - 2) END AS action, a.by_user"
        " FROM f CROSS JOIN LATERAL ("
        "  SELECT f.actor AS who, true AS by_user WHERE f.actor ~ {quoted}"
        "  UNION ALL SELECT f.target, false WHERE f.target ~ {quoted}"
        "   AND lower(f.target) IS DISTINCT FROM lower(f.actor)"
        "  UNION ALL SELECT '\"' || m[1] || '\"', NULL FROM regexp_matches(f.raw, {bare}, 'g') AS m"
        " ) a"
        ") "
        "INSERT INTO {index} (user_id, created_at, entry_id, action, by_user)"
        " SELECT user_id, created_at, id, action, by_user FROM about WHERE user_id <> {nil}::uuid"
        " {order} ON CONFLICT DO NOTHING {returning}"
    ).format(
        typeof=sql.SQL(f"{prefix}_typeof"),
        undecodable=sql.Literal(UNDECODABLE),
        entries=ENTRIES,
        where=where,
        name=sql.Literal(QUOTED_NAME),
        quoted=sql.Literal(QUOTED_UUID),
        bare=sql.Literal(f"({UUID_TEXT})"),
        index=INDEX,
        nil=sql.Literal(NIL_UUID),
        order=sql.SQL("ORDER BY 1, 2, 3" if whole else ""),
        returning=sql.SQL("" if whole else "RETURNING created_at, entry_id"),
    )


def _written(statement: sql.Composable, params: dict) -> tuple[int, dt.datetime | None, uuid.UUID | None]:
    """Run an `index_rows` statement: (rows written, created_at and id of the newest)."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "WITH ins AS ({statement}) SELECT (SELECT count(*) FROM ins), w.created_at, w.entry_id"
                " FROM (SELECT 1) one LEFT JOIN (SELECT created_at, entry_id FROM ins"
                "  WHERE created_at > '-infinity' ORDER BY created_at DESC, entry_id DESC LIMIT 1) w ON true"
            ).format(statement=statement),
            params,
        )
        return cursor.fetchone()


def _now() -> dt.datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class Done:
    """What a build or catch-up did."""

    built: bool
    why: str
    written: int
    state: AuthEventIndexState


@transaction.atomic
def build(*, why: str = "asked") -> Done:
    """(Re)build the whole index in one set-based pass, in one transaction (readers see the
    old index until it commits). Returns what it did; raises IndexUnavailable."""
    prefix = payload_function_prefix()
    with connection.cursor() as cursor:
        # One writer at a time; readers are not blocked.
        cursor.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(INDEX))
        cursor.execute(sql.SQL("DELETE FROM {}").format(INDEX))
        started = _now()
        # The sort is the server's (work_mem per sort, this transaction only), not ours.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(index_rows(prefix, sql.SQL("TRUE"), whole=True))
        written = cursor.rowcount
        cursor.execute(
            sql.SQL(
                "SELECT created_at, entry_id FROM {} WHERE created_at > '-infinity'"
                " ORDER BY created_at DESC, entry_id DESC LIMIT 1"
            ).format(INDEX)
        )
        created_at, entry_id = cursor.fetchone() or (None, None)
    state, _ = AuthEventIndexState.objects.update_or_create(
        pk=1,
        defaults={
            "built_at": started,
            "caught_up_at": started,
            "watermark_created_at": created_at,
            "watermark_id": entry_id,
            "rows": written,
        },
    )
    return Done(built=True, why=why, written=written, state=state)


@transaction.atomic
def catch_up() -> Done:
    """Index the entries since the watermark, less OVERLAP (all of them when the index is
    empty); build the index instead when there is none. Transactional; returns what it did;
    raises IndexUnavailable."""
    prefix = payload_function_prefix()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(INDEX))
    state = AuthEventIndexState.objects.select_for_update().filter(pk=1).first()
    if state is None:
        return build(why="no index yet")
    started = _now()
    since = state.watermark_created_at - OVERLAP if state.watermark_created_at else None
    # Without a watermark (the log was empty at the build): read everything.
    where = sql.SQL("e.created_at >= %(since)s") if since else sql.SQL("TRUE")
    written, created_at, entry_id = _written(index_rows(prefix, where), {"since": since})
    if created_at is not None and (
        state.watermark_created_at is None or (created_at, entry_id) > (state.watermark_created_at, state.watermark_id)
    ):
        state.watermark_created_at, state.watermark_id = created_at, entry_id
    state.caught_up_at = started
    state.rows += written
    state.save()
    return Done(built=False, why="", written=written, state=state)


# Reads: what the timeline asks of the index.


def state() -> AuthEventIndexState | None:
    """The index's state, or None when it was never built (the timeline then reads the log
    directly)."""
    return AuthEventIndexState.objects.filter(pk=1).first()


#: The timeline's filters as conditions on an index row `x` (see timeline.describe).
def kind_condition(kind: str, sign_ins: set[str], refusals: set[str]) -> sql.Composable:
    if kind == "signins":
        return sql.SQL("x.by_user IS NOT NULL AND x.action = ANY({})").format(sql.Literal(sorted(sign_ins)))
    if kind == "errors":
        return sql.SQL("(x.by_user IS NULL OR x.action = ANY({}))").format(sql.Literal(sorted(refusals)))
    if kind == "staff":
        return sql.SQL("x.by_user = false")
    return sql.SQL("TRUE")


def entries_of(user_id: uuid.UUID, condition: sql.Composable, limit: int) -> list[tuple[uuid.UUID, dt.datetime]]:
    """(entry_id, created_at) of the user's newest `limit` indexed entries matching
    `condition`, newest first: a backward range of the index's key, no read of `auth`."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT x.entry_id, x.created_at FROM {index} x WHERE x.user_id = %s AND {condition}"
                " ORDER BY x.created_at DESC, x.entry_id DESC LIMIT %s"
            ).format(index=INDEX, condition=condition),
            [user_id, limit],
        )
        return cursor.fetchall()


def has_entries(user_id: uuid.UUID) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} x WHERE x.user_id = %s)").format(INDEX), [user_id])
        return cursor.fetchone()[0]


def fetch(entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple]:
    """{id: (id, created_at, payload text, ip)} of these entries, read by primary key (an
    entry deleted from the log since it was indexed is simply absent)."""
    if not entry_ids:
        return {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "SELECT e.id, e.created_at, e.payload::text, e.ip_address::text FROM {entries} e"
                " JOIN unnest(%s::uuid[]) AS page(id) ON page.id = e.id"
            ).format(entries=ENTRIES),
            [list(entry_ids)],
        )
        return {row[0]: row for row in cursor.fetchall()}
