"""A list says what it ignored in its address, and shows a sensible page without it.

Django's changelist answers anything it cannot use (`?p=999` past the last page, `?foo=bar`,
a date that is not one) with a bare redirect to `?e=1`, and a value that is not one of a
field's choices (`?action__exact=bogus`) with an empty list that looks like a real answer.
Here every list (`SaysWhatItIgnored`, on each ModelAdmin) drops just the parameters it
cannot use, shows the list without them, and names each one in a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ORDER_VAR, PAGE_VAR
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.http import QueryDict

#: What a list cannot use in its address, whether Django finds it when the filters are
#: built (IncorrectLookupParameters, DisallowedModelAdminLookup) or the database when the
#: list is counted (DataError: `?created_at__year=99999`, `?client_address=notanip`).
UNUSABLE = (
    IncorrectLookupParameters,
    DisallowedModelAdminLookup,
    ValidationError,
    ValueError,
    OverflowError,
    DataError,
)
NOT_A_FILTER = "is not a filter this list can use: it was ignored."
#: How much of a value a message quotes.
QUOTED = 80
#: How many of a filter's choices a message lists.
CHOICES_LISTED = 12
#: How many parameters of an address a list tries one by one; the rest are ignored unread.
MAX_TRIED = 20


def _quote(key: str, value: str) -> str:
    return f"“{key}={value[:QUOTED]}{'…' if len(value) > QUOTED else ''}”"


def ignored_note(key: str, value: str, why: str = NOT_A_FILTER) -> str:
    """The one sentence every list uses: “key=value” in the address ... it was ignored."""
    return f"{_quote(key, value)} in the address {why}"


class _Held:
    """Messages storage while the list is built: what the filters say is kept, and said
    (`replay`) only by the build that is shown."""

    def __init__(self):
        self.added = []

    def add(self, level, message, extra_tags="") -> None:
        self.added.append((level, message, extra_tags))

    def replay(self, request) -> None:
        for level, message, extra_tags in self.added:
            messages.add_message(request, level, message, extra_tags=extra_tags)


def _restore_messages(request, saved) -> None:
    if saved is None:
        del request._messages
    else:
        request._messages = saved


class SaysWhatItIgnored:
    """For a ModelAdmin: the changelist drops what it cannot use from the address (an
    unknown parameter, a value that is not a filter's choice, a page that does not exist)
    and says so in a warning naming each one, instead of redirecting to `?e=1` or showing
    an empty list as if it were the answer."""

    def get_changelist_instance(self, request):
        query = request.GET.copy()
        query.pop(ERROR_FLAG, None)  # Django's own "the last address was unusable" flag
        notes = [*self._drop_unknown_choices(query), *_drop_malformed_page(query)]
        notes += _drop_unusable_ordering(query, len(self.get_list_display(request)))
        request.GET = query
        # Built once when the address is usable (the usual case: no extra queries). What
        # the filters say is held until the build succeeds, so a failed build says nothing.
        held = _Held()
        saved_messages = getattr(request, "_messages", None)
        request._messages = held
        try:
            changelist = super().get_changelist_instance(request)
        except UNUSABLE as exc:
            if isinstance(exc, DataError) and connection.in_atomic_block:
                raise  # the caller's transaction is aborted: nothing more can be read in it
            changelist = None
        finally:
            _restore_messages(request, saved_messages)
        if changelist is None:
            request.GET, more = self._without_what_fails(request, query)
            notes += more
            changelist = super().get_changelist_instance(request)
        else:
            held.replay(request)
        notes += _page_past_the_end(changelist, request.GET)
        for note in notes:
            messages.warning(request, note)
        return changelist

    def changelist_as_given(self, request):
        """The changelist from the address exactly as given, for a view that must not act
        on less than was asked (the audit export): raises one of UNUSABLE where the list
        page would ignore something."""
        if self._drop_unknown_choices(request.GET.copy()):
            raise IncorrectLookupParameters("a filter value that is not one of its choices")
        return super().get_changelist_instance(request)

    # --- finding what the list cannot use ----------------------------------------------
    def _builds(self, request, query: QueryDict) -> bool:
        """Whether the list builds (filters, count, page) from `query`: a trial, in a
        savepoint, whose messages are not said."""
        saved_get, saved_messages = request.GET, getattr(request, "_messages", None)
        request.GET, request._messages = query, _Held()
        try:
            with transaction.atomic():
                super().get_changelist_instance(request)
        except UNUSABLE:
            return False
        finally:
            request.GET = saved_get
            _restore_messages(request, saved_messages)
        return True

    def _without_what_fails(self, request, query: QueryDict) -> tuple[QueryDict, list[str]]:
        """`query` less the parameters the list cannot use, and a note for each."""
        notes = []
        rest = query.copy()
        page = rest.pop(PAGE_VAR, None)
        if not (page and self._builds(request, rest)):
            keys = [k for k in rest if k != PAGE_VAR]
            # Each key tried costs a build of the list: a few, never thousands for an
            # address stuffed with junk (900 keys once cost 2,715 queries in one request).
            for key in keys[MAX_TRIED:]:
                del rest[key]
            if len(keys) > MAX_TRIED:
                notes.append(
                    f"{len(keys) - MAX_TRIED} more parameters in the address were ignored "
                    f"(a list looks at {MAX_TRIED} at most)."
                )
            for key in keys[:MAX_TRIED]:
                alone = QueryDict(mutable=True)
                alone.setlist(key, rest.getlist(key))
                if not self._builds(request, alone):
                    notes.append(ignored_note(key, rest.get(key, "")))
                    del rest[key]
            if not self._builds(request, rest):
                # Each works alone, not together: the whole list, said plainly.
                notes.append("The filters in the address cannot be used together: they were ignored.")
                rest = QueryDict(mutable=True)
        if page:
            with_page = rest.copy()
            with_page.setlist(PAGE_VAR, page)
            if self._builds(request, with_page):
                return with_page, notes
            notes.append(f"There is no page {page[0][:QUOTED]} of this list: showing the first page.")
        return rest, notes

    def _drop_unknown_choices(self, query: QueryDict) -> list[str]:
        """A field filter offering fixed choices (`action`, `outcome`): a value that is not
        one of them is dropped, not searched for (it would list nothing)."""
        notes = []
        for entry in self.list_filter:
            name = entry[0] if isinstance(entry, (list, tuple)) else entry
            if not isinstance(name, str) or "__" in name:
                continue
            try:
                field = self.model._meta.get_field(name)
            except Exception:  # noqa: S112 - not a field of this model: not a choices filter
                continue
            if not getattr(field, "choices", None):
                continue
            offered = [str(key) for key, _ in field.flatchoices]
            key = f"{name}__exact"
            values = query.getlist(key)
            if values and any(value not in offered for value in values):
                bad = next(value for value in values if value not in offered)
                listed = ", ".join(offered[:CHOICES_LISTED]) + (", …" if len(offered) > CHOICES_LISTED else "")
                title = str(getattr(field, "verbose_name", name))
                notes.append(f"“{bad[:QUOTED]}” is not a choice of the “{title}” filter ({listed}): it was ignored.")
                del query[key]
        return notes


def _drop_malformed_page(query: QueryDict) -> list[str]:
    """`?p=abc` or `?p=0`: Django quietly shows page 1; say so."""
    page = query.get(PAGE_VAR)
    # isascii(): "²" is a digit to str.isdigit() and not to int().
    if page is None or (page.isascii() and page.isdigit() and int(page) >= 1 and len(page) < 10):
        return []
    del query[PAGE_VAR]
    return [ignored_note(PAGE_VAR, page, "is not a page number: showing the first page.")]


def _drop_unusable_ordering(query: QueryDict, columns: int) -> list[str]:
    """`?o=garbage` or `?o=99`: Django quietly drops the parts of an ordering that name no
    column of the list; the usable parts stay, and the rest is said."""
    given = query.get(ORDER_VAR)
    if given is None:
        return []
    parts = given.split(".")
    usable = [
        p
        for p in parts
        if p.removeprefix("-").isascii() and p.removeprefix("-").isdigit() and int(p.removeprefix("-")) < columns
    ]
    if len(usable) == len(parts):
        return []
    if usable:
        query[ORDER_VAR] = ".".join(usable)
    else:
        del query[ORDER_VAR]
    return [ignored_note(ORDER_VAR, given, "is not an order of this list's columns: it was ignored.")]


def _page_past_the_end(changelist, query: QueryDict) -> list[str]:
    """A one-page list given `?p=5` shows its one page (Django does not complain): say so."""
    if PAGE_VAR not in query or getattr(changelist, "keyset", False):
        return []
    paginator = getattr(changelist, "paginator", None)
    pages = getattr(paginator, "num_pages", None)
    if pages is not None and changelist.page_num > pages:
        return [f"There is no page {changelist.page_num} of this list: showing the first page."]
    return []
