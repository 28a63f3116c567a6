"""Ad-hoc measurement used for docs/performance.md (issue 12); run from the repository root
with .venv/bin/python. See the docstring of bench/run.py for the databases it reads."""

import os
import statistics
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
import django  # noqa: E402

django.setup()
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402

u = get_user_model().objects.filter(username="bench").first() or get_user_model().objects.create_superuser(
    "bench", "b@example.com", "x-not-secret-1"
)
c = Client()
c.force_login(u)
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
for label, q in [
    ("unfiltered", ""),
    ("missing_profiles", "status=missing_profiles"),
    ("missing_profiles p20", "status=missing_profiles&p=20"),
    ("missing_profiles p150", "status=missing_profiles&p=150"),
    ("missing_any", "status=missing_any"),
    ("missing_users", "status=missing_users"),
    ("complete", "status=complete"),
]:
    url = "/admin/provisioning/authuser/?" + q
    times = []
    for i in range(reps + 1):
        t = time.perf_counter()
        r = c.get(url)
        d = time.perf_counter() - t
        assert r.status_code == 200, (url, r.status_code)
        if i:
            times.append(d)
        if d > 20 and times:
            break
    print(
        f"{sys.argv[1]} {label:24s} median {statistics.median(times) * 1000:7.0f} ms  max {max(times) * 1000:7.0f} ms",
        flush=True,
    )
