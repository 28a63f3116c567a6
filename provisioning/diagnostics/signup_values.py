"""What a sign-up copies from the auth user, and where that fails for some users only:
metadata keys some sign-up methods do not send (check 4), and values that collide on a
unique column (check 5). Read-only.

The values come from two places: the spec (`{ auth = ... }` and `{ metadata = ... }`) and
the functions triggers on auth.users call (their `INSERT ... VALUES`, read as text). A
function's expression is evaluated over the live auth users only when it is made of
columns, literals and a few pure functions; otherwise it is named but not evaluated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import DatabaseError, connection
from psycopg import sql

from provisioning.diagnostics.findings import (
    AUTH_SCHEMA,
    AUTH_TABLE,
    OK,
    PROBLEM,
    SAMPLE,
    WARNING,
    Check,
    error_details,
    read_rolled_back,
)
from provisioning.diagnostics.trigger import app_table_inserts, split_arguments
from provisioning.engine import catalog, statements
from provisioning.spec import SPEC, AuthColumn, AuthMetadata
from provisioning.spec.vocabulary import SECRET_AUTH_COLUMNS

#: Sign-ups this recent are the ones that show what each sign-up method sends today.
RECENT_DAYS = 30
#: An evaluation of sign-up expressions over every live user is bounded.
EVALUATION_TIMEOUT = "60s"
#: Keys sign-up methods send for the same thing (OAuth providers send `name` and `picture`,
#: email sign-ups whatever the app's form sends, usually `full_name` and `avatar_url`).
SYNONYMS = {
    "full_name": ("name",),
    "name": ("full_name",),
    "avatar_url": ("picture",),
    "picture": ("avatar_url",),
    "username": ("user_name", "preferred_username"),
    "user_name": ("username", "preferred_username"),
    "preferred_username": ("username", "user_name"),
}
_METADATA_KEY = re.compile(r"raw_user_meta_data\s*->>?\s*'([^']+)'", re.IGNORECASE)
_NEW = re.compile(r"\bNEW\s*\.", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_WORD = re.compile(r"[A-Za-z_][\w$]*")
#: Marks an evaluated expression may not hold: comments, quoted identifiers, escapes,
#: dollar quotes, statement ends.
_REFUSED = ("/*", "*/", "--", '"', "\\", "&", "$", ";")
_COALESCE = re.compile(r"\s*coalesce\s*\((?P<args>.*)\)\s*(?:::\s*[\w ]+)?\s*$", re.IGNORECASE | re.DOTALL)
#: Words a function's expression may contain to be evaluated here: pure functions, casts
#: and keywords (with the auth user's columns and the alias `u`).
_SAFE_WORDS = {
    "coalesce", "nullif", "lower", "upper", "btrim", "trim", "ltrim", "rtrim", "split_part", "substr",
    "substring", "left", "right", "concat", "concat_ws", "replace", "regexp_replace", "md5", "initcap",
    "text", "varchar", "character", "varying", "citext", "uuid", "jsonb", "json", "int", "integer", "bigint",
    "null", "true", "false", "and", "or", "not", "is", "case", "when", "then", "else", "end", "from", "for",
}  # fmt: skip


@dataclass(frozen=True)
class CopiedValue:
    """One app table column filled from the auth user."""

    source: str  # "the spec" or the function, e.g. "public.handle_new_user()"
    schema: str
    table: str
    column: str
    written: str  # the value as written: `raw_user_meta_data->>'full_name'`, `NEW.email`
    expression: str  # the value over auth user `u` as SQL, "" when it is not evaluated here
    metadata_keys: tuple[str, ...]
    may_be_null: bool

    @property
    def target(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"


def _from_spec() -> list[CopiedValue]:
    found = []
    for spec in SPEC:
        for column, value in spec.values.items():
            if not isinstance(value, AuthColumn | AuthMetadata) or column == spec.key:
                continue
            keys = (value.key,) if isinstance(value, AuthMetadata) else ()
            expression = value.expression("u").as_string(connection.connection).replace("%%", "%")
            found.append(
                CopiedValue("the spec", spec.schema, spec.name, column, value.describe(), expression, keys, True)
            )
    return found


def _over_auth_user(expression: str, auth_columns: set[str]) -> str:
    """A function's expression over `NEW` rewritten over auth user `u`, or "" when it holds
    anything but the auth user's columns, literals and pure functions."""
    rewritten = _NEW.sub("u.", expression)
    # Comments, quoted identifiers, escapes and dollar quoting can hide words from the
    # check below (`/*'*/ anything /*'*/` reads as a literal here, as a comment to SQL).
    if any(mark in rewritten for mark in _REFUSED):
        return ""
    bare = _LITERAL.sub("''", rewritten)
    words = {w.lower() for w in _WORD.findall(bare)}
    return rewritten if words <= _SAFE_WORDS | (auth_columns - SECRET_AUTH_COLUMNS) | {"u"} else ""


def _may_be_null(expression: str) -> bool:
    """False when the expression ends in a fallback: `coalesce(..., '')`."""
    match = _COALESCE.match(expression)
    return not match or bool(_NEW.search(split_arguments(match["args"])[-1]))


def _from_functions() -> list[CopiedValue]:
    auth_columns = set(catalog.columns(AUTH_SCHEMA, AUTH_TABLE))
    keys = {spec.name: spec.key for spec in SPEC}
    found, seen = [], set()
    for trig in catalog.triggers(AUTH_SCHEMA, AUTH_TABLE):
        function = catalog.function(trig.function_schema, trig.function_name)
        if function is None or (function.schema, function.name) in seen:
            continue
        seen.add((function.schema, function.name))
        for insert in app_table_inserts(function.definition):
            for column in insert.columns:
                written = insert.value_of(column)
                if column == keys.get(insert.table) or not _NEW.search(written):
                    continue
                found.append(
                    CopiedValue(
                        f"{function.schema}.{function.name}()",
                        "public",
                        insert.table,
                        column,
                        written,
                        _over_auth_user(written, auth_columns),
                        tuple(dict.fromkeys(_METADATA_KEY.findall(written))),
                        _may_be_null(written),
                    )
                )
    return found


def copied_values() -> list[CopiedValue]:
    """Every app table column a sign-up fills from the auth user: the functions' first."""
    return _from_functions() + _from_spec()


# --- 4. Metadata some sign-up methods lack ---------------------------------------------------


def evaluate(query: sql.Composable) -> list[tuple]:
    """Run a read that evaluates sign-up expressions read from a function's source: in a
    savepoint that is read-only, bounded in time and always rolled back, so that even an
    expression that slipped through `_over_auth_user` can change nothing, not even a
    setting of the session. Raises DatabaseError when the database refuses it."""
    return read_rolled_back(
        query, {}, timeout=EVALUATION_TIMEOUT, setup=[("SET LOCAL transaction_read_only = on", None)]
    )


def _refuses_null(value: CopiedValue) -> bool:
    """The column is NOT NULL. (A CHECK constraint accepts NULL, so a missing key passes it.)"""
    live = catalog.columns(value.schema, value.table).get(value.column)
    return live is not None and live.not_null


def _lacks(value: CopiedValue) -> sql.Composable:
    """True for auth user `u` when the value comes out NULL: the expression itself where it
    is evaluated here (a coalesce over `full_name` and `name` then counts only users with
    neither), else every key it reads being absent."""
    if value.expression:
        return sql.SQL("({}) IS NULL").format(sql.SQL(value.expression))
    return sql.SQL(" AND ").join(
        sql.SQL("u.raw_user_meta_data ->> {} IS NULL").format(sql.Literal(k)) for k in value.metadata_keys
    )


def _metadata_by_provider(keys: list[str], values: list[CopiedValue]) -> list[tuple[dict, dict, list[int]]]:
    """Per provider of the recent live sign-ups: (how many and how many lack each key, how
    many of those send a synonym instead, how many get NULL for each of `values`)."""
    counted = [sql.SQL("count(*)")]
    for key in keys:
        lacks = sql.SQL("u.raw_user_meta_data ->> {} IS NULL").format(sql.Literal(key))
        counted.append(sql.SQL("count(*) FILTER (WHERE {})").format(lacks))
        for synonym in SYNONYMS.get(key, ()):
            has = sql.SQL("u.raw_user_meta_data ->> {} IS NOT NULL").format(sql.Literal(synonym))
            counted.append(sql.SQL("count(*) FILTER (WHERE {} AND {})").format(lacks, has))
    counted += [sql.SQL("count(*) FILTER (WHERE {})").format(_lacks(v)) for v in values]
    query = sql.SQL(
        "SELECT coalesce(u.raw_app_meta_data ->> 'provider', '(none)'), {counted} FROM {auth} u "
        "WHERE {population} AND u.created_at > now() - make_interval(days => {days}) GROUP BY 1 ORDER BY 2 DESC, 1"
    ).format(
        counted=sql.SQL(", ").join(counted),
        auth=statements.AUTH_USERS,
        population=statements.POPULATION,
        days=sql.Literal(RECENT_DAYS),
    )
    rows = []
    for provider, total, *figures in evaluate(query):
        row = {"provider": provider, "recent sign-ups": total}
        synonyms = {}
        for key in keys:
            row[f"lack {key}"] = figures.pop(0)
            synonyms[key] = {s: figures.pop(0) for s in SYNONYMS.get(key, ())}
        rows.append((row, synonyms, figures))
    return rows


def check_signup_metadata() -> Check:
    """Metadata keys a sign-up copies into a NOT NULL column, which some recent sign-ups
    (per provider in raw_app_meta_data) do not send."""
    name = "Sign-up metadata by provider"
    values = [v for v in copied_values() if v.metadata_keys]
    if not values:
        return Check(name, OK, "Neither the sign-up functions nor the spec read raw_user_meta_data.", "", {})
    keys = list(dict.fromkeys(k for v in values for k in v.metadata_keys))
    by_provider = _metadata_by_provider(keys, values)
    findings, statements_needed = [], []
    for i, value in enumerate(values):
        if not (value.may_be_null and _refuses_null(value)):
            continue
        for row, synonyms, lacking_values in by_provider:
            lacking = lacking_values[i]
            if not lacking:
                continue
            instead = list(
                dict.fromkeys(f"`{s}`" for key in value.metadata_keys for s, n in synonyms[key].items() if n)
            )
            fails = (
                'their sign-up fails (`null value in column ... violates not-null constraint`, "Database error '
                'saving new user")'
                if value.source != "the spec"
                else "provisioning cannot write their row"
            )
            source = "The spec" if value.source == "the spec" else value.source
            findings.append(
                f"{source} writes {value.written} into {value.target} (NOT NULL), which comes out empty for "
                f"{lacking} of {row['recent sign-ups']} recent {row['provider']} sign-up(s): they do not send "
                f"{' or '.join(value.metadata_keys)}"
                + (f" (they send {' or '.join(instead)} instead)" if instead else "")
                + f", and {fails}."
            )
            statements_needed.append(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL;")
                .format(sql.Identifier(value.schema, value.table), sql.Identifier(value.column))
                .as_string(connection.connection)
            )
    details = {"rows": [row for row, _, _ in by_provider], "keys": keys, "recent_days": RECENT_DAYS}
    if not findings:
        return Check(
            name,
            OK,
            f"Every metadata key the sign-up copies ({', '.join(keys)}) goes into a column that accepts it missing, "
            f"or falls back to a value (counts per provider, last {RECENT_DAYS} days, below).",
            "",
            details,
        )
    details["statements"] = list(dict.fromkeys(statements_needed))
    fallback = ", ".join([*(f"NEW.raw_user_meta_data->>'{k}'" for k in (keys[0], *SYNONYMS.get(keys[0], ()))), "''"])
    return Check(
        name,
        PROBLEM,
        " ".join(findings),
        f"Fall back to the key each provider sends, then to a value: `coalesce({fallback})` in the function; "
        "or let the column be empty (review, then apply as a migration):",
        details,
    )


# --- 5. Unique values that collide -------------------------------------------------------------


def _collisions(value: CopiedValue, key: str, data_type: str) -> tuple[int, int, list[str]]:
    """(live users sharing the value with another live user, live users whose value another
    user's row already holds, a sample of the values)."""
    # A hash join, not a probe per user: the column is unique, so a value matches one row at
    # most (2.3 s against 3.2 s at a million users, EXPLAIN ANALYZE).
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE s.n > 1), count(*) FILTER (WHERE s.taken), "
        "(array_agg(DISTINCT s.val::text) FILTER (WHERE s.n > 1 OR s.taken))[1:{sample}] "
        "FROM (SELECT v.val, count(*) OVER (PARTITION BY v.val) AS n, "
        "(x.ctid IS NOT NULL AND x.{key} IS DISTINCT FROM v.id) AS taken "
        "FROM (SELECT u.id, ({expression})::{type} AS val FROM {auth} u WHERE {population}) v "
        "LEFT JOIN {table} x ON x.{column} = v.val "
        "WHERE v.val IS NOT NULL) s"
    ).format(
        sample=sql.Literal(SAMPLE),
        table=sql.Identifier(value.schema, value.table),
        column=sql.Identifier(value.column),
        key=sql.Identifier(key),
        expression=sql.SQL(value.expression),
        type=sql.SQL(data_type),
        auth=statements.AUTH_USERS,
        population=statements.POPULATION,
    )
    ((shared, taken, sample),) = evaluate(query)
    return shared, taken, list(sample or [])


def check_unique_collisions() -> Check:
    """Live users whose copied value would collide on a unique column: with another live
    user's (emails shared across identities, usernames from metadata), or with a row another
    user already holds."""
    name = "Unique values the sign-up copies"
    keys = {(spec.schema, spec.name): spec.key for spec in SPEC}
    rows, findings, skipped, checked = [], [], [], set()
    for value in copied_values():
        key = keys.get((value.schema, value.table))
        unique = {k.columns for k in catalog.unique_keys(value.schema, value.table)}
        same = (value.target, re.sub(r'[\s"]', "", value.expression.lower()))  # the function's = the spec's
        if key is None or (value.column,) not in unique or same in checked:
            continue
        checked.add(same)
        if not value.expression:
            skipped.append(f"{value.target} = {value.written} ({value.source}): not a plain expression")
            continue
        # The type without its length: a cast to varchar(20) would cut values, and so make
        # up collisions an insert would refuse as too long instead.
        data_type = catalog.columns(value.schema, value.table)[value.column].base_type
        try:
            shared, taken, sample = _collisions(value, key, data_type)
        except DatabaseError as exc:
            skipped.append(f"{value.target} = {value.written} ({value.source}): {error_details(exc)['message']}")
            continue
        if shared or taken:
            rows.append(
                {
                    "column": value.target,
                    "copied from": f"{value.written} ({value.source})",
                    "users sharing a value": shared,
                    "users whose value another user's row holds": taken,
                    "sample values": ", ".join(sample),
                }
            )
            findings.append(
                f"{value.target} (from {value.written}, {value.source}): {shared} live user(s) share a value with "
                f"another live user, {taken} have a value another user's row already holds."
            )
    note = f" Not evaluated here: {'; '.join(skipped)}." if skipped else ""
    if not findings:
        return Check(name, OK, "No live user's copied value collides on a unique column." + note, "", {})
    return Check(
        name,
        WARNING,
        " ".join(findings)
        + " For these users the sign-up's insert raises `duplicate key value violates unique constraint` "
        '("Database error saving new user"), and provisioning cannot write their row.' + note,
        "Free the value where it is stale (an orphaned row holding it: see “Orphaned app rows”), or derive the "
        "column so that it is unique (for a username, append part of the id: "
        "`... || '_' || left(NEW.id::text, 8)`).",
        {"rows": rows},
    )
