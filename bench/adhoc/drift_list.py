"""Ad-hoc measurement for docs/performance.md (issue 16): the "Values differ from auth" list at
a given drift density. Run from the repository root:
`.venv/bin/python bench/adhoc/drift_list.py eb_idx_low 500` copies the bench database (built by
bench/run.py or bench/adhoc/build_shapes.py), migrates the copy, makes one live provisioned
user in 500 change their email in auth (bench/run.py's DRIFT_SQL; 20 is the bench's 5%), then
times the list's first page: 5 requests reading the last drift scan, and 3 that compare with
auth first (`?recheck=1`)."""

import os
import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
src, every = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
work = f"{src}_dl"
run.copy_database(server, src, work)
try:
    run.run_manage(["migrate", "--noinput", "-v", "0"], work, server)
    with run.connect(server, work) as conn:
        drifted = conn.execute(run.DRIFT_SQL.replace("% 20 = 0", f"% {every} = 0")).rowcount
        conn.execute("ANALYZE auth.users")
        conn.commit()
    os.environ["DJANGO_SETTINGS_MODULE"] = run.SETTINGS
    os.environ["DATABASE_URL"] = run.database_url(server, work)
    import django  # after DATABASE_URL is set

    django.setup()
    client = run.bench_client()
    url = "/admin/provisioning/authuser/?status=drifted"
    run.get_ok(client, url)  # warm-up, and the first scan
    listed = run.summary([run.get_ok(client, url)[0] for _ in range(5)])
    rescan = run.summary([run.get_ok(client, url + "&recheck=1", follow=True)[0] for _ in range(3)])
    from django.db import connection

    connection.close()
    print(
        f"{src}, {drifted:,} drifted (1 in {every}): first page {listed['median_ms']:.0f} ms "
        f"(p95 {listed['p95_ms']:.0f}); comparing first {rescan['median_ms']:.0f} ms (p95 {rescan['p95_ms']:.0f})"
    )
finally:
    run.drop_database(server, work)
