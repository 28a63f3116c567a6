"""Ad-hoc measurement used for docs/performance.md (issue 12); run from the repository root
with .venv/bin/python. See the docstring of bench/run.py for the databases it reads."""

import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
src = sys.argv[1]
bs = sys.argv[2]
work = src + "_w"
run.copy_database(server, src, work)
orig = run.run_cli_measured


def patched(args, db, srv):
    return orig([*args, "--batch-size", bs], db, srv)


run.run_cli_measured = patched
res = {}
try:
    run.measure_bulk(res, server, work, 1000000)
finally:
    run.drop_database(server, work)
b, h = res["bulk"], res["bulk_baseline"]
print(
    src,
    "bs",
    bs,
    "ours",
    round(b["seconds"], 2),
    "rss",
    round(b["rss_mb"]),
    "batches",
    b["batches"],
    "hand",
    round(h["seconds"], 2),
    "ratio",
    round(b["seconds"] / h["seconds"], 2),
    "same",
    res["bulk_same_rows"],
)
