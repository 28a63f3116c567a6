"""The suite cleans up after itself: every process a test starts is stopped when the test
ends, and the session fails if one is left running (tests/leftovers.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
import psycopg

from tests.processes import BASE_DIR, _postmaster, private_cluster


def _pg_ctl(server, *args: str) -> None:
    from pgserver._commands import pg_ctl

    pg_ctl(list(args), pgdata=server.pgdata, user=server.system_user, timeout=60)


def _processes_naming(folder) -> list:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if f"{folder}/" in " ".join(p.info["cmdline"] or []) and p.status() != psutil.STATUS_ZOMBIE
    ]


def test_a_cluster_restarted_with_pg_ctl_is_stopped_when_the_test_ends(tmp_path):
    """What test_worker_outlives_a_database_restart does to its cluster: an immediate stop
    and a start by pg_ctl. pgserver's own cleanup then left the new postmaster running."""
    pgdata = tmp_path / "pg"
    try:
        with private_cluster(pgdata) as server:
            info = server.get_postmaster_info()
            socket_dir = str(info.socket_dir)
            _pg_ctl(server, "-m", "immediate", "stop")
            _pg_ctl(server, "-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start")
            with psycopg.connect(host=socket_dir, port=str(info.port or 5432), user="postgres", dbname="postgres"):
                pass  # it runs again
            raise RuntimeError("the test failed here")
    except RuntimeError:
        pass

    assert _postmaster(pgdata) is None
    assert _processes_naming(pgdata) == []


def _run_inner_session(tmp_path, test_source: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(test_source))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.leftovers",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-q",
            "test_inner.py",
            f"--basetemp={tmp_path / 'inner-tmp'}",
        ],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(BASE_DIR)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_session_that_leaves_a_process_running_fails_and_names_it(tmp_path):
    done = _run_inner_session(
        tmp_path,
        """
        import subprocess

        def test_starts_a_server_and_forgets_it():
            subprocess.Popen(["sleep", "321"])
        """,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed" in done.stdout
    assert "processes left running by the tests (now killed)" in done.stdout
    assert "sleep 321" in done.stdout
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "321"]]


def test_a_session_whose_tests_stop_their_processes_passes(tmp_path):
    done = _run_inner_session(
        tmp_path,
        """
        import subprocess

        def test_starts_a_server_and_stops_it():
            child = subprocess.Popen(["sleep", "322"])
            child.terminate()
            child.wait()
        """,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "left running" not in done.stdout


def test_a_server_left_in_a_private_folder_outside_pytests_own_is_found_too(tmp_path):
    """A private cluster's data lives outside pytest's temporary folder (pgserver's user must
    reach it) and its postmaster, restarted by pg_ctl, is no child of pytest: the folder's
    name carries the session's pid, and the check finds what runs there."""
    done = _run_inner_session(
        tmp_path,
        """
        import subprocess, sys

        from tests.processes import private_prefix

        def test_starts_a_detached_server_and_forgets_it():
            command = f'"{sys.executable}" -c "import time; time.sleep(323)" /tmp/{private_prefix()}x/pg &'
            subprocess.run(["sh", "-c", command], check=True)
        """,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "processes left running by the tests (now killed)" in done.stdout
    assert "time.sleep(323)" in done.stdout
