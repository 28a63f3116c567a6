# ruff: noqa: E402
"""Ad-hoc measurement used for docs/performance.md (issue 12): one home page request with
nothing cached, and the statements it ran, slowest first. Run from the repository root with
.venv/bin/python bench/adhoc/home.py <database built by build_shapes.py>."""

import os
import sys
import time
import warnings

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
os.environ["DJANGO_SETTINGS_MODULE"] = "eloity_admin.settings_test"
os.environ["DATABASE_URL"] = run.database_url(server, sys.argv[1])
warnings.filterwarnings("ignore")
import django

django.setup()
import psycopg

calls = {}
orig = psycopg.Cursor.execute


def ex(self, q, params=None, **kw):
    t = time.perf_counter()
    r = orig(self, q, params, **kw)
    key = (q.as_string(self) if hasattr(q, "as_string") else str(q)).replace("\n", " ")[:110]
    d = calls.setdefault(key, [0, 0.0])
    d[0] += 1
    d[1] += time.perf_counter() - t
    return r


psycopg.Cursor.execute = ex
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

u = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
    "bench", "b@example.com", "x-not-secret-1"
)
c = Client()
c.force_login(u)
cache.clear()
calls.clear()
t = time.perf_counter()
r = c.get("/admin/")
print("home", r.status_code, round(time.perf_counter() - t, 2))
for k, (n, s) in sorted(calls.items(), key=lambda kv: -kv[1][1])[:10]:
    print(f"{s:7.2f}s {n:3d} {k}")
