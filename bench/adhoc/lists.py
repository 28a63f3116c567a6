"""Ad-hoc measurement used for docs/performance.md (issue 12); run from the repository root
with .venv/bin/python. See the docstring of bench/run.py for the databases it reads."""

import html
import os
import re
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


def page_url(query: str, page: int) -> str:
    """The address of page `page` as a person reaches it: following "Next" from the first
    page (keyset paging), or `p=` where the list pages by number."""
    url = "/admin/provisioning/authuser/?" + query
    for _ in range(page - 1):
        found = re.search(r'<a href="([^"]+)" class="keyset-next"', c.get(url).content.decode())
        if found is None:
            return url + f"&p={page}"
        url = "/admin/provisioning/authuser/" + html.unescape(found.group(1))
    return url


CASES = [
    ("unfiltered", "", 1),
    ("missing_profiles", "status=missing_profiles", 1),
    ("missing_profiles p20", "status=missing_profiles", 20),
    ("missing_profiles p150", "status=missing_profiles", 150),
    ("missing_any", "status=missing_any", 1),
    ("missing_any p150", "status=missing_any", 150),
    ("missing_users", "status=missing_users", 1),
    ("complete", "status=complete", 1),
    ("cannot", "status=cannot", 1),
]
for label, q, page in CASES:
    url = page_url(q, page)
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
