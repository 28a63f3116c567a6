"""Signal handlers wired in `ProvisioningConfig.ready`."""

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, connections, transaction
from psycopg import sql

#: What the runtime role may never do to the audit log; `migrate` takes these back from every
#: role but the owner (the README's default privileges grant UPDATE and DELETE on every table).
AUDIT_WITHHELD = "UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"


def create_django_schema(sender, using="default", **kwargs) -> None:
    """Create the schema that holds Django's own tables before `migrate` writes to it; refuse,
    in one line (exit 2), a `migrate` by a role that does not own it.

    Django's tables (users with password hashes, sessions, the audit log) must never land
    in `public`, which Supabase exposes through its Data API. `CREATE SCHEMA IF NOT EXISTS`
    needs the database's CREATE privilege even when the schema exists, so it only runs when
    the schema is missing. The dashboard's runtime role owns nothing: `migrate` is the
    owner's job (README, "Connecting to a real Supabase project").
    """
    schema = settings.DJANGO_SCHEMA
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_userbyid(nspowner), pg_has_role(current_user, nspowner, 'USAGE') "
            "FROM pg_namespace WHERE nspname = %s",
            [schema],
        )
        found = cursor.fetchone()
        if found is None:
            try:
                with transaction.atomic(using=using):
                    cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            except DatabaseError as exc:
                cursor.execute("SELECT current_user")
                (user,) = cursor.fetchone()
                raise CommandError(
                    f"cannot create schema {schema} ({str(exc).strip().splitlines()[0]}): as postgres, run "
                    f"CREATE SCHEMA {schema} AUTHORIZATION {user}; then migrate again",
                    returncode=2,
                ) from exc
            return
        owner, is_owner = found
        if not is_owner:
            raise CommandError(
                f"run migrate as the owner role (DATABASE_URL of {owner}): it owns schema {schema}, "
                "this connection's role only uses it",
                returncode=2,
            )


def keep_audit_log_append_only(sender, using="default", **kwargs) -> None:
    """After `migrate`: no role but the audit table's owner keeps UPDATE, DELETE, TRUNCATE,
    REFERENCES or TRIGGER on it (idempotent; runs on every migrate). The append-only trigger
    rejects UPDATE and DELETE as well; only the owner could disable it."""
    if sender.label != "provisioning":
        return
    table = f"{settings.DJANGO_SCHEMA}.provisioning_auditevent"
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT a.grantee = 0, pg_get_userbyid(a.grantee) FROM pg_class c, aclexplode(c.relacl) a "
            "WHERE c.oid = to_regclass(%s) AND a.grantee <> c.relowner AND a.privilege_type = ANY(%s)",
            [table, [p.strip() for p in AUDIT_WITHHELD.split(",")]],
        )
        for is_public, grantee in cursor.fetchall():
            cursor.execute(
                sql.SQL("REVOKE {} ON {}.provisioning_auditevent FROM {}").format(
                    sql.SQL(AUDIT_WITHHELD),
                    sql.Identifier(settings.DJANGO_SCHEMA),
                    sql.SQL("PUBLIC") if is_public else sql.Identifier(grantee),
                )
            )
