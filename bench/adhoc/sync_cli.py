"""Ad-hoc measurement for docs/performance.md (issue 16): bench/run.py's value-drift step alone
(5% changed emails; the drifted list's first page; `sync_values --all-drifted` from the command
line against the hand-written UPDATE on a copy), on a copy of a bench database. Run from the
repository root: `.venv/bin/python bench/adhoc/sync_cli.py eb_idx_low`."""

import os
import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
src = sys.argv[1]
work = src + "_ms"
run.drop_database(server, work)
run.copy_database(server, src, work)
os.environ["DJANGO_SETTINGS_MODULE"] = run.SETTINGS
os.environ["DATABASE_URL"] = run.database_url(server, work)
import django  # noqa: E402 - after DATABASE_URL is set

django.setup()
res = {}
try:
    run.measure_sync(res, server, work, requests=3)
finally:
    run.use_database("postgres", server)
    run.drop_database(server, work)
s, h = res["sync"], res["sync_baseline"]
print(
    src,
    "drift list",
    round(res["drift_list"]["median_ms"]),
    "ms; sync",
    round(s["seconds"], 2),
    "s rss",
    round(s["rss_mb"]),
    "hand",
    round(h["seconds"], 2),
    "ratio",
    round(s["seconds"] / h["seconds"], 2),
    "same",
    res["sync_same_rows"],
)
