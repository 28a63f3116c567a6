"""What every list of the dashboard's admin shares: a count that stops early, and
read-only pages (the dashboard writes only through its services)."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property

from provisioning.web.templatetags.eloity import local_time

#: Counting stops here: an exact COUNT(*) of a filtered million-row list on every page
#: view costs more than the page itself.
COUNT_CAP = 10_000
#: The least a list counts: on a million auth users, counting a filtered list costs about
#: 25 ms per 1,000 matches (each row is a heap fetch in id order), so the first page counts
#: this far and deeper pages count further (AuthUserAdmin.get_paginator).
MIN_COUNT_CAP = 1_000

#: The most users one bulk action may carry; "Provision all missing" and "Sync all
#: drifted" have no such limit.
MAX_SELECTED = 10_000


class CappedCountPaginator(Paginator):
    """A paginator whose count stops at `count_cap` + 1 (COUNT_CAP unless given)."""

    def __init__(self, *args, count_cap: int = COUNT_CAP, **kwargs):
        super().__init__(*args, **kwargs)
        self.count_cap = count_cap

    @cached_property
    def count(self) -> int:
        # order_by(): a count needs no order, and sorting by an unindexed column is the
        # expensive part on a large table.
        return self.object_list.order_by().values("pk")[: self.count_cap + 1].count()


class ReadOnlyMixin:
    """No add, change or delete in the admin, for anyone (superusers included)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def time_field(field: str, label: str, *, ordering: bool = True):
    """A datetime shown as everywhere else in the dashboard: the staff member's time zone,
    `12 Aug 2026, 11:24 UTC`, with the UTC value on hover (`local_time`)."""

    @admin.display(description=label, ordering=field if ordering else None)
    def show(obj):
        return local_time(getattr(obj, field))

    show.__name__ = f"{field}_shown"
    return show


def yes_no_field(field: str, label: str):
    """A plain yes/no for a fact about a row (is it anonymous? frozen?): the red ✗ means
    "missing row" in this dashboard and must not make a normal user look broken."""

    @admin.display(description=label)
    def show(obj):
        value = getattr(obj, field)
        return "—" if value is None else ("yes" if value else "no")

    show.__name__ = f"{field}_shown"
    return show
