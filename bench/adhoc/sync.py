"""Ad-hoc measurement for docs/drift.md (issue 16): where `sync_values --all-drifted` spends
its time at a million users. Run from the repository root with .venv/bin/python:
`bench/adhoc/sync.py SOURCE_DB` copies SOURCE_DB (a bench database: bench/adhoc/build_shapes.py),
makes 5% of users change their email in auth (bench/run.py's DRIFT_SQL), then runs the sync in
this process with every statement timed, and prints the time per statement kind."""

import os
import sys
import time
from collections import defaultdict

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
src = sys.argv[1]
work = src + "_sync"
run.copy_database(server, src, work)
try:
    with run.connect(server, work) as conn:
        drifted = conn.execute(run.DRIFT_SQL).rowcount
        conn.execute("ANALYZE auth.users")
        conn.commit()
    os.environ["DJANGO_SETTINGS_MODULE"] = run.SETTINGS
    os.environ["DATABASE_URL"] = run.database_url(server, work)
    import django

    django.setup()
    from django.db import connection

    from provisioning.actors import Actor
    from provisioning.drift import services

    spent: dict[str, list[float]] = defaultdict(list)

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            text = sql if isinstance(sql, str) else sql.as_string(connection.connection)
            kind = (
                "read drifted rows"
                if 'CREATE TEMPORARY TABLE "eloity_drift' in text
                else "batch end"
                if "array_agg(k ORDER BY k DESC)" in text
                else "unique_clashes"
                if "OVER (PARTITION" in text
                else "sync UPDATE"
                if text.lstrip().startswith("WITH upd")
                else "audit INSERT"
                if "provisioning_auditevent" in text and "INSERT" in text
                else "other"
            )
            spent[kind].append(time.perf_counter() - started)
            if kind == "other" and time.perf_counter() - started > 0.1:
                print(f"  slow other: {time.perf_counter() - started:.2f} s: {text[:160]}")

    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        result = services.sync_values(
            actor=Actor.command_line(), all_drifted=True, batch_size=int(sys.argv[2]) if len(sys.argv) > 2 else None
        )
    total = time.perf_counter() - started
    connection.close()
    print(
        f"{src}: drifted {drifted}, changed {result.total_changed} in {result.batches} batch(es), {total:.2f} s in all"
    )
    for kind, times in sorted(spent.items(), key=lambda kv: -sum(kv[1])):
        print(f"  {kind:>15}: {sum(times):6.2f} s over {len(times)} statement(s)")
    print(f"  {'python':>15}: {total - sum(sum(t) for t in spent.values()):6.2f} s")
finally:
    run.drop_database(server, work)
