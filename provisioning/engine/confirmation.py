"""Provisioning on confirmation: where the sign-up trigger creates app rows only once the
user confirms (a trigger on UPDATE OF email_confirmed_at, a WHEN clause, or an IF in the
function), an unconfirmed sign-up without rows is expected, not broken. This reads the
catalog to tell, and gives the condition "awaiting confirmation" for the status counts,
the lists and the watchdog, which count those users apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Q
from psycopg import sql

from provisioning.engine import catalog
from provisioning.spec import TABLE_NAMES

#: The columns a confirmation gate tests, most specific first.
GATE_COLUMNS = ("email_confirmed_at", "phone_confirmed_at", "confirmed_at")
_COLUMN = re.compile(r"\b(" + "|".join(GATE_COLUMNS) + r")\b", re.IGNORECASE)
_WHEN = re.compile(r"\bWHEN\s*\((?P<condition>.*)\)\s*EXECUTE\b", re.IGNORECASE | re.DOTALL)
_UPDATE_OF = re.compile(r"\bUPDATE\s+OF\s+(?P<columns>[\w\s,\"]+?)\s+ON\b", re.IGNORECASE)
#: An IF in the function's body (`IF NEW.email_confirmed_at IS NULL THEN`), not END IF.
_IF = re.compile(r"(?<!END )\bIF\b(?P<condition>[^;]*?)\bTHEN\b", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LITERAL = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True)
class Gate:
    """Provisioning waits for `column` to be set; `how` says where that is decided."""

    column: str
    how: str
    #: The triggers that provision, each gated.
    triggers: tuple[str, ...] = ()

    def awaiting_sql(self, alias: str = "u") -> sql.Composable:
        """True for auth user `alias` while it is unconfirmed (so expected to lack rows)."""
        if self.column == "confirmed_at":  # generated as least(email_, phone_confirmed_at)
            return sql.SQL("({0}.email_confirmed_at IS NULL AND {0}.phone_confirmed_at IS NULL)").format(
                sql.Identifier(alias)
            )
        return sql.SQL("{}.{} IS NULL").format(sql.Identifier(alias), sql.Identifier(self.column))

    def awaiting_q(self) -> Q:
        if self.column == "confirmed_at":
            return Q(email_confirmed_at__isnull=True, phone_confirmed_at__isnull=True)
        return Q(**{f"{self.column}__isnull": True})

    @property
    def description(self) -> str:
        return f"provisioning waits for {self.column} ({self.how})"


def _app_inserts() -> re.Pattern:
    names = "|".join(re.escape(t) for t in TABLE_NAMES)
    return re.compile(rf'INSERT\s+INTO\s+(?:"?public"?\s*\.\s*)?"?({names})"?\b', re.IGNORECASE)


def _writes_app_rows(definition: str) -> bool:
    return bool(_app_inserts().search(definition))


def _gated_in_body(definition: str) -> str | None:
    """The confirmation column the function's body waits for, or None. Only two shapes
    count: `IF <column> IS NULL THEN RETURN ...` before the first insert into an app table,
    or every such insert inside `IF <column> IS NOT NULL THEN ... END IF`. Any other IF
    that mentions the column (setting is_verified, say) is no gate."""
    body = _LITERAL.sub("''", _COMMENT.sub(" ", definition))
    inserts = [m.start() for m in _app_inserts().finditer(body)]
    if not inserts:
        return None
    first, last = inserts[0], inserts[-1]
    for match in _IF.finditer(body, 0, first):
        condition = match["condition"]
        found = _COLUMN.search(condition)
        if not found:
            continue
        negated = re.search(r"\bIS\s+NOT\s+NULL\b", condition, re.IGNORECASE)
        returns_at_once = re.match(r"\s*RETURN\b", body[match.end() :], re.IGNORECASE)
        if returns_at_once and not negated and re.search(r"\bIS\s+NULL\b", condition, re.IGNORECASE):
            return found[1].lower()
        closed = re.search(r"\bEND\s+IF\b", body[match.end() : last], re.IGNORECASE)
        if negated and not returns_at_once and not closed and re.search(r"\bEND\s+IF\b", body[last:], re.IGNORECASE):
            return found[1].lower()
    return None


def _gated_by(trigger: catalog.Trigger, definition: str) -> tuple[str, str] | None:
    """(column, how) when `trigger` provisions only for confirmed users, else None."""
    when = _WHEN.search(trigger.definition)
    if when and (found := _COLUMN.search(when["condition"])):
        return found[1].lower(), f"the WHEN clause of trigger {trigger.name}"
    update_of = _UPDATE_OF.search(trigger.definition)
    if trigger.on_update and not trigger.on_insert and update_of and (found := _COLUMN.search(update_of["columns"])):
        return found[1].lower(), f"trigger {trigger.name} fires on UPDATE OF {found[1].lower()}"
    gated = _gated_in_body(definition)
    if gated:
        return gated, f"an IF on {gated} in {trigger.function}()"
    return None


def gate() -> Gate | None:
    """The confirmation gate, when every firing trigger on auth.users that writes app rows
    has one; None when some trigger provisions at sign-up (or none provisions at all)."""
    gates = []
    for trigger in catalog.triggers("auth", "users"):
        if not (trigger.fires and trigger.for_each_row and (trigger.on_insert or trigger.on_update)):
            continue
        function = catalog.function(trigger.function_schema, trigger.function_name)
        if function is None or not _writes_app_rows(function.definition):
            continue
        gated = _gated_by(trigger, function.definition)
        if gated is None:
            return None
        gates.append((*gated, trigger.name))
    if not gates:
        return None
    return Gate(gates[0][0], "; ".join(how for _, how, _ in gates), tuple(name for *_, name in gates))
