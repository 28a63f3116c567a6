"""Searching the audit log: the search box's text to a filter on events. Reads only."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from provisioning.ids import clean_typed, parse_uuid
from provisioning.models import AuthUser

#: How many auth users one email search may match (emails are unique per sign-up kind).
EMAIL_MATCHES = 100


def search_audit_events(queryset: QuerySet, term: str) -> QuerySet:
    """Events matching the search box. Reads only.

    A UUID matches events that targeted that auth user, or the run with that id; any other
    text is part of an email (any case), whose auth users' events are returned (at most
    EMAIL_MATCHES users), or part of an actor's name. Odd input (NUL bytes, 10,000 characters, `%`, `_`) narrows
    the list, never fails: values are bound parameters and LIKE wildcards are escaped.
    """
    term = clean_typed(term)
    if not term:
        return queryset
    as_uuid = parse_uuid(term)
    if as_uuid is not None:
        return queryset.filter(Q(target_user_ids__contains=[as_uuid]) | Q(run_id=as_uuid))
    user_ids = list(AuthUser.objects.filter(email__icontains=term).values_list("id", flat=True)[:EMAIL_MATCHES])
    match = Q(actor_username__icontains=term)
    if user_ids:
        match |= Q(target_user_ids__overlap=user_ids)
    return queryset.filter(match)
