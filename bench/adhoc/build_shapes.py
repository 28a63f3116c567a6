"""Ad-hoc measurement used for docs/performance.md (issue 12); run from the repository root
with .venv/bin/python. See the docstring of bench/run.py for the databases it reads."""

import sys

sys.path.insert(0, "bench")
sys.path.insert(0, ".")
import run

server = run.server_params()
print(server, flush=True)
for name, indexed, ratio in [
    ("eb_idx_low", True, "low"),
    ("eb_noidx_low", False, "low"),
    ("eb_idx_high", True, "high"),
    ("eb_noidx_high", False, "high"),
]:
    t = run.build_database(server, name, 1_000_000, indexed=indexed, ratio=ratio)
    print(name, round(t), flush=True)
