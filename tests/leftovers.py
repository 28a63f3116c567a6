"""After the session: fail the run if a test left a process running.

Every process a test starts (a worker, gunicorn, a private PostgreSQL cluster) is stopped
when the test ends, pass or fail. A leak would otherwise outlive `make test` by hours, one
server per run. The embedded server under .data/ runs on purpose and is not a leak.
"""

from __future__ import annotations

import os
import time

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import psutil

    from tests.processes import leftover_processes

    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller checks
    folder = session.config._tmp_path_factory.getbasetemp()
    deadline = time.monotonic() + 5  # a process stopped a moment ago may still be exiting
    while (leftovers := leftover_processes(os.getpid(), folder)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not leftovers:
        return
    lines = []
    for process in leftovers:
        try:
            lines.append(f"  pid {process.pid}: {' '.join(process.cmdline())[:200]}")
            process.kill()
        except psutil.Error:
            continue
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes left running by the tests (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
