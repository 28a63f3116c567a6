"""The audit log as CSV: columns, one event's cells, and the neutralising of anything a
spreadsheet would run as a formula. The admin's export view (web/admin/audit.py) streams
these lines for whatever the audit list shows."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator

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


def event_row(event: AuditEvent) -> list[str]:
    """One event as CSV cells, in EXPORT_COLUMNS order, formulas neutralised."""
    return [
        cell(event.pk),
        cell(event.created_at),
        cell(event.actor_username),
        cell(event.channel),
        cell(event.action),
        cell(event.outcome),
        cell(" ".join(event.tables or [])),
        cell(" ".join(str(i) for i in event.target_user_ids or [])),
        cell(event.rows_created),
        cell(event.not_provisioned),
        cell(event.detail),
        cell(event.client_address),
        cell(event.run_id),
    ]


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then one CSV line per event, produced as they are read (no buffer)."""
    writer = csv.writer(Echo())
    yield writer.writerow(EXPORT_COLUMNS)
    for event in events:
        yield writer.writerow(event_row(event))
