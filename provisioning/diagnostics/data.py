"""What the data says: orphaned and duplicate app rows, live sign-ups missing rows by week
of sign-up, and missing rows provisioning cannot write. Read-only."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.utils import timezone
from psycopg import sql

from provisioning.diagnostics.drift import unique_index_statement
from provisioning.diagnostics.findings import OK, PROBLEM, SAMPLE, WARNING, Check, counted_reasons, has_key_column
from provisioning.diagnostics.reasons import advice_by_reason
from provisioning.drift import selectors as drift_selectors
from provisioning.engine import confirmation, selectors, statements
from provisioning.engine.plans import TablePlan, plan_table, plan_tables
from provisioning.spec import SPEC


def check_orphans() -> Check:
    """App rows whose auth user no longer exists: counts and a sample. Read-only."""
    rows = []
    with connection.cursor() as cursor:
        for spec in SPEC:
            if not has_key_column(spec):
                continue
            # The count and the sample in one scan.
            cursor.execute(
                sql.SQL(
                    "SELECT count(*), (array_agg(x.{k} ORDER BY x.{k}))[1:%s] FROM {t} x "
                    "WHERE NOT EXISTS (SELECT 1 FROM {auth} u WHERE u.id = x.{k})"
                ).format(t=spec.identifier(), auth=statements.AUTH_USERS, k=sql.Identifier(spec.key)),
                [SAMPLE],
            )
            n, sample = cursor.fetchone()
            if n:
                rows.append(
                    {"table": spec.qualified_name, "orphaned rows": n, "sample user ids": ", ".join(map(str, sample))}
                )
    if not rows:
        return Check("Orphaned app rows", OK, "Every app row belongs to an existing auth user.", "", {})
    total = sum(r["orphaned rows"] for r in rows)
    where = ", ".join(f"{r['orphaned rows']} in {r['table']}" for r in rows)
    return Check(
        "Orphaned app rows",
        WARNING,
        f"{total} app row(s) belong to auth users that no longer exist ({where}).",
        "They do not break sign-ups, but they hold unique values (an email, a username) a new sign-up may "
        "collide with. Review them on the “Orphaned rows” page (or `manage.py remove_orphans --dry-run`); staff "
        "with the permission to remove orphaned rows can remove them there, audited, every row kept in the event.",
        {"rows": rows},
    )


def check_value_drift() -> Check:
    """App values copied from the auth user that no longer match it (a changed email)."""
    name = "Values that differ from auth"
    per_column, per_table = drift_selectors.drift_counts()
    if not per_column:
        return Check(name, OK, "Every value copied from the auth user still matches it.", "", {})
    listed = "; ".join(f"{c.rows} in {c.table}.{c.column} (from {c.copied_from})" for c in per_column)
    return Check(
        name,
        WARNING,
        f"App rows hold values that differ from their auth user's: {listed}. The app then searches, notifies and "
        "checks uniqueness with stale values (an old email).",
        "Sync them: the list's “Values differ from auth” filter, the user's page, “Sync all drifted…”, or "
        "`manage.py sync_values --all-drifted --dry-run`. To keep them in step, apply "
        "`provisioning_trigger_sql --sync-on-update`.",
        {
            "rows": [
                {"table": c.table, "column": c.column, "copied from": c.copied_from, "rows that differ": c.rows}
                for c in per_column
            ],
            "per_table": per_table,
        },
    )


def check_duplicates() -> Check:
    """Users with more than one row in a table that should hold one per user. Read-only."""
    rows = []
    statements_needed = []
    with connection.cursor() as cursor:
        for spec in SPEC:
            if not has_key_column(spec) or plan_table(spec).key_is_unique:
                continue  # a unique key rules duplicates out
            grouped = sql.SQL(
                "SELECT {k}, count(*) AS n FROM {t} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1"
            )
            grouped = grouped.format(k=sql.Identifier(spec.key), t=spec.identifier())
            # The counts and the sample (most rows first) in one scan.
            cursor.execute(
                sql.SQL(
                    "SELECT count(*), coalesce(sum(d.n), 0), "
                    "(array_agg(d.{k}::text || ' (' || d.n || ')' ORDER BY d.n DESC, d.{k}))[1:%s] FROM ({g}) d"
                ).format(k=sql.Identifier(spec.key), g=grouped),
                [SAMPLE],
            )
            users, total, sample = cursor.fetchone()
            if users:
                rows.append(
                    {
                        "table": spec.qualified_name,
                        "users": users,
                        "rows": int(total),
                        "sample (rows)": ", ".join(sample),
                    }
                )
                statements_needed.append(unique_index_statement(spec))
    if not rows:
        return Check("Duplicate app rows", OK, "No user has more than one row in an app table.", "", {})
    where = ", ".join(f"{r['users']} user(s) with {r['rows']} rows in {r['table']}" for r in rows)
    return Check(
        "Duplicate app rows",
        PROBLEM,
        f"Some users have more than one row: {where}. The app reads one at random.",
        "Keep one row per user (the oldest, merged by hand where they differ) in a reviewed migration, then "
        f"apply {' '.join(f'`{s}`' for s in statements_needed)} so it cannot happen again.",
        {"rows": rows, "statements": statements_needed},
    )


# --- 6. Coverage ------------------------------------------------------------------------------


def missing_by_week(plans: list[TablePlan] | None = None) -> list[dict]:
    """Per week of sign-up, live sign-ups and how many miss a row in each app table; only
    weeks with a gap, most recent first. The same computation as the home page's chart
    (`selectors.status_counts_by_week`), in the same time zone, so a sign-up falls in the
    same week on both pages."""
    plans = plans if plans is not None else plan_tables(SPEC)
    weeks = selectors.current_counts_by_week(timezone.get_current_timezone_name(), plans=plans)
    gaps = {week: figures for week, figures in weeks.items() if figures[2]}
    result = []
    for week in sorted(gaps, key=lambda w: (w is not None, w), reverse=True):
        live, missing, _ = gaps[week]
        row = {"week of": week.isoformat() if week else "unknown", "sign-ups": live}
        row.update({f"missing {p.name}": missing.get(p.name, 0) for p in plans})
        result.append(row)
    return result


def check_confirmation_gate() -> Check:
    """Where provisioning waits for confirmation, unconfirmed sign-ups without rows are
    expected: say so, and count them apart from the confirmed ones."""
    name = "Provisioning on confirmation"
    gate = confirmation.gate()
    if gate is None:
        return Check(
            name,
            OK,
            "Provisioning runs at sign-up (no trigger waits for confirmation): every live sign-up is expected to "
            "have its rows.",
            "",
            {},
        )
    missing_any, awaiting = selectors.current_missing_by_confirmation(gate)
    return Check(
        name,
        OK,
        f"The sign-up trigger provisions only confirmed users: {gate.description}. Of the {missing_any} live "
        f"sign-up(s) missing rows, {awaiting} are unconfirmed and expected to wait; {missing_any - awaiting} are "
        "confirmed. The status counts, the list (“Missing anything, awaiting confirmation”) and the watchdog count "
        "the unconfirmed apart.",
        "",
        {"rows": [{"missing rows": missing_any, "awaiting confirmation": awaiting}], "column": gate.column},
    )


def check_coverage(blocked: Callable[[], selectors.Blocked] | None = None) -> Check:
    """Live sign-ups missing app rows, by week of sign-up: when the trigger stopped working.
    Where provisioning waits for confirmation, unconfirmed sign-ups are no alarm."""
    plans = plan_tables(SPEC)
    weeks = missing_by_week(plans)
    if not weeks:
        return Check("Sign-ups missing rows", OK, "Every live sign-up has its app user, profile and wallet.", "", {})
    gate = confirmation.gate()
    if gate is not None:
        missing_any, awaiting = selectors.current_missing_by_confirmation(gate)
        if missing_any == awaiting:
            return Check(
                "Sign-ups missing rows",
                OK,
                f"The {awaiting} live sign-up(s) missing rows are all unconfirmed, and provisioning waits for "
                f"confirmation ({gate.description}): expected.",
                "",
                {"rows": weeks[:60]},
            )
    totals = {p.name: sum(w[f"missing {p.name}"] for w in weeks) for p in plans}
    all_missing = [w["week of"] for w in weeks if any(w[f"missing {p.name}"] == w["sign-ups"] for p in plans)]
    found = (
        "Live sign-ups are missing rows: "
        + ", ".join(f"{n} {t}" for t, n in totals.items() if n)
        + f"; gaps in {len(weeks)} week(s), most recently the week of {weeks[0]['week of']}"
        + f" ({selectors.freshness()})."
    )
    if all_missing:
        found += (
            f" In {len(all_missing)} week(s) a table got no row for any sign-up (the trigger was off or broken), "
            f"most recently the week of {all_missing[0]}."
        )
    counts = (blocked() if blocked else selectors.current_blocked_summary(sample=0, plans=plans)).rows
    blocked_rows = sum(counts.values())
    fixable = sum(totals.values()) - blocked_rows
    if gate is not None:
        found += (
            f" {awaiting} of the {missing_any} users missing rows are unconfirmed, which is expected: "
            f"{gate.description}."
        )
    if blocked_rows:
        found += (
            f" Of these {sum(totals.values())} missing rows, {blocked_rows} cannot be provisioned "
            "(see “Users that cannot be provisioned”)."
        )
    advice = (
        f"Fix the cause first (trigger checks above), then Provision all missing (or `manage.py provision "
        f"--all-missing`): it writes the {fixable} row(s) that can be written."
        if fixable > 0
        else "Provisioning cannot write any of these rows: see “Users that cannot be provisioned” for why."
    )
    return Check("Sign-ups missing rows", WARNING, found, advice, {"rows": weeks[:60], "missing": totals})


def check_cannot_provision(blocked: Callable[[], selectors.Blocked] | None = None) -> Check:
    """Users missing a row that provisioning cannot write (each counted once), and the rows
    they lack grouped by table and reason. `blocked` gives
    `selectors.blocked_summary(sample=SAMPLE)` when the report already has it."""
    found = blocked() if blocked else selectors.current_blocked_summary(sample=SAMPLE)
    counts, sample = found.rows, found.sample
    if not counts:
        return Check("Users that cannot be provisioned", OK, "Every missing row can be provisioned.", "", {})
    total = sum(counts.values())
    # Advice follows the reason: each reason gets its own (a phone-only sign-up's is not a
    # missing default's), named with it when there are several.
    advice = advice_by_reason(counts, plan_tables(SPEC))
    text = next(iter(advice.values())) if len(advice) == 1 else " ".join(f"“{r}”: {a}" for r, a in advice.items())
    return Check(
        "Users that cannot be provisioned",
        WARNING,
        f"{found.users} user{'' if found.users == 1 else 's'} cannot be provisioned ({total} missing "
        f"row{'' if total == 1 else 's'}): " + counted_reasons(counts) + f" ({selectors.freshness()}).",
        text,
        {
            "rows": [{"reason": r, "rows": n} for r, n in counts.items()],
            "users": found.users,
            "sample": sample,
            "advice": advice,
        },
    )
