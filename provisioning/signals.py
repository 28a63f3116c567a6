"""Signal handlers wired in `ProvisioningConfig.ready`."""

from django.conf import settings
from django.db import connections
from psycopg import sql


def create_django_schema(sender, using="default", **kwargs) -> None:
    """Create the schema that holds Django's own tables before `migrate` writes to it.

    Django's tables (users with password hashes, sessions, the audit log) must never land
    in `public`, which Supabase exposes through its Data API.
    """
    with connections[using].cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(settings.DJANGO_SCHEMA)))
