# ruff: noqa: E402
"""Ad-hoc measurement used for docs/performance.md (issue 12): the whole-population counts
(status_counts, by week, cannot_provision) on a database built by build_shapes.py, one
warm-up then one timed run each. Run from the repository root with .venv/bin/python."""

import os
import sys
import time

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
os.environ["DJANGO_SETTINGS_MODULE"] = "eloity_admin.settings_test"
os.environ["DATABASE_URL"] = run.database_url(server, sys.argv[1])
import django

django.setup()
from django.db import connection

from provisioning.engine import plans as P
from provisioning.engine import selectors, statements
from provisioning.spec import SPEC

plans = P.plan_tables(SPEC)
for label, fn in [
    ("status_counts", lambda: connection.cursor().execute(statements.status_counts(plans))),
    ("by_week", lambda: selectors.status_counts_by_week("UTC", plans=plans)),
    ("cannot_provision", lambda: selectors.cannot_provision(sample=20, plans=plans)),
]:
    fn()
    t = time.perf_counter()
    fn()
    print(sys.argv[1], label, round(time.perf_counter() - t, 2))
