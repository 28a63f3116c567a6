"""What the sign-up webhook remembers between deliveries, in the database so that every
server process (gunicorn's workers, several machines) shares it: refusals counted per
source address and minute, and the Standard Webhooks message ids seen while their
signature could still be replayed. Process memory (the local-memory cache) would give each
worker its own count and its own idea of what was already delivered."""

from __future__ import annotations

import datetime

from django.db import connection
from django.utils import timezone
from psycopg import sql

from provisioning.models import WebhookDelivery, WebhookRefusals

#: The Standard Webhooks library accepts a timestamp up to 5 minutes old or 5 minutes
#: ahead, so one signature verifies for up to 10 minutes: its id is kept that long, and
#: a margin.
REPLAY_WINDOW = datetime.timedelta(minutes=11)


def minute_of(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(second=0, microsecond=0)


def count_refusal(*, source: str | None, now: datetime.datetime | None = None) -> tuple[datetime.datetime, int]:
    """Count one refused delivery from `source` in the current minute; (the minute, the
    refusals counted for it so far, this one included). One statement, atomic whatever
    the number of processes counting at once."""
    minute = minute_of(now or timezone.now())
    statement = sql.SQL(
        "INSERT INTO {table} (source, minute, refusals) VALUES (%s, %s, 1) "
        "ON CONFLICT (source, minute) DO UPDATE SET refusals = {table}.refusals + 1 "
        "RETURNING refusals"
    ).format(table=_table(WebhookRefusals))
    with connection.cursor() as cursor:
        cursor.execute(statement, [source or "", minute])
        (refusals,) = cursor.fetchone()
    return minute, refusals


def earlier_refusals(*, source: str | None, before: datetime.datetime) -> WebhookRefusals | None:
    """The source's last counted minute before `before`, if any. Reads only."""
    return WebhookRefusals.objects.filter(source=source or "", minute__lt=before).order_by("-minute").first()


def refusals_counted(*, source: str | None, minute: datetime.datetime) -> int | None:
    """The refusals counted for `source` in `minute` (None for a minute never counted)."""
    return WebhookRefusals.objects.filter(source=source or "", minute=minute).values_list("refusals", flat=True).first()


def remember_delivery(message_id: str) -> bool:
    """Remember a Standard Webhooks message id; False when it is already remembered (a
    replay, or the same delivery arriving twice at once). Ids older than REPLAY_WINDOW
    are forgotten on the way: their signatures no longer verify."""
    now = timezone.now()
    WebhookDelivery.objects.filter(received_at__lt=now - REPLAY_WINDOW).delete()
    statement = sql.SQL(
        "INSERT INTO {table} (message_id, received_at) VALUES (%s, %s) ON CONFLICT (message_id) DO NOTHING "
        "RETURNING message_id"
    ).format(table=_table(WebhookDelivery))
    with connection.cursor() as cursor:
        cursor.execute(statement, [message_id, now])
        return cursor.fetchone() is not None


def forget_delivery(message_id: str) -> None:
    """Forget a message id whose delivery provisioned nothing (not yet in auth.users, a
    failure): the sender's retry, under the same id, is then handled again."""
    WebhookDelivery.objects.filter(message_id=message_id).delete()


def _table(model) -> sql.Identifier:
    # The table lives in Django's schema (on the search path); its name from the model.
    return sql.Identifier(model._meta.db_table)
