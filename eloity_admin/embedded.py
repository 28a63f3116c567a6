"""The embedded PostgreSQL server used when no DATABASE_URL is set.

`pgserver` ships PostgreSQL binaries as a PyPI wheel, so a fresh machine needs nothing
installed. The server keeps running between commands (`cleanup_mode=None`); its data lives
under `.data/pg` in the checkout. The demo database it creates carries a marker comment:
`load_demo` refuses to seed any database without it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

DEMO_DATABASE = "eloity_demo"
DEMO_MARKER = "eloity-admin embedded demo database"


def start(data_dir: Path) -> dict:
    """Start (or attach to) the embedded server; return Django DATABASES settings for it."""
    import psycopg

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
        warnings.simplefilter("ignore")
        import pgserver

        data_dir.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(data_dir / "pg", cleanup_mode=None)
    info = server.get_postmaster_info()
    host = str(info.socket_dir)
    port = str(info.port or 5432)
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DEMO_DATABASE]).fetchone()
        if not exists:
            from psycopg import sql

            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(DEMO_DATABASE), sql.Literal(DEMO_MARKER))
            )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DEMO_DATABASE,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": host,
        "PORT": port,
    }
