"""The audit log as CSV: columns, one event's cells, and the neutralising of anything a
spreadsheet would run as a formula. The admin's export view (web/admin/audit.py) streams
these lines for whatever the audit list shows."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from provisioning.models import AuditEvent

#: Rows fetched per round trip while streaming: memory stays flat for a year of events.
EXPORT_CHUNK = 2000
EXPORT_COLUMNS = (
    "id",
    "created_at",
    "actor_username",
    "channel",
    "action",
    "outcome",
    "tables",
    "target_user_ids",
    "person",
    "rows_created",
    "not_provisioned",
    "detail",
    "client_address",
    "run_id",
)
#: A cell starting with one of these is a formula to a spreadsheet (OWASP's list).
FORMULA_CHARACTERS = "=+-@\t\r"
#: Where a spreadsheet may start a cell inside one of our values: the value's start, after
#: a comma or a semicolon (a reader set to ';', common in Europe, ignores the quotes the
#: comma-separated file puts around the value), or after a line break, when followed
#: (past blanks and quotes) by a formula character. A typed username on a failed sign-in
#: is attacker-controlled, so every such place gets an apostrophe.
_FORMULA_CELL = re.compile(r'(^|[,;\n\r])(?=[\s"]*[=+\-@\t\r])')
#: A plain number (a negative id, an amount) stays as it is: it is not a formula.
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?\Z")


def neutralise_formulas(text: str) -> str:
    """`text` with an apostrophe before every place a spreadsheet could read a formula,
    whether it opens the file with commas or with semicolons as separators."""
    if _PLAIN_NUMBER.match(text):
        return text
    return _FORMULA_CELL.sub(lambda match: match.group(1) + "'", text)


class Echo:
    """A file-like object whose write returns the line: csv.writer without a buffer."""

    def write(self, value):
        return value


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return neutralise_formulas(text)


def event_row(event: AuditEvent, person: str = "") -> list[str]:
    """One event as CSV cells, in EXPORT_COLUMNS order, formulas neutralised. `person`: how
    the one user of a single-user event is named (email, else phone), else empty."""
    return [
        cell(event.pk),
        cell(event.created_at),
        cell(event.actor_username),
        cell(event.channel),
        cell(event.action),
        cell(event.outcome),
        cell(" ".join(event.tables or [])),
        cell(" ".join(str(i) for i in event.target_user_ids or [])),
        cell(person),
        cell(event.rows_created),
        cell(event.not_provisioned),
        cell(event.detail),
        cell(event.client_address),
        cell(event.run_id),
    ]


def single_user(event: AuditEvent) -> str | None:
    """The id (text) of the one user a single-user event touched, else None."""
    ids = event.target_user_ids or []
    return str(ids[0]) if len(ids) == 1 else None


def csv_lines(
    events: Iterable[AuditEvent], people: Callable[[list[str]], dict[str, str]] | None = None
) -> Iterator[str]:
    """The header, then one CSV line per event, produced as they are read (no buffer).
    `people` names users ({id: label} for ids, `selectors.person_labels`): one call per
    EXPORT_CHUNK events, for the single-user events among them."""
    writer = csv.writer(Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    events = iter(events)
    while chunk := list(islice(events, EXPORT_CHUNK)):
        ids = [i for i in map(single_user, chunk) if i]
        labels = people(ids) if people and ids else {}
        for event in chunk:
            yield writer.writerow(event_row(event, labels.get(single_user(event) or "", "")))
