"""`{{ event|what_it_did:user_id }}`: what an audit event did to one user, for the user's
audit history: the rows it created (or would create), the values a sync changed (old →
new), and why a row could not be written."""

from __future__ import annotations

from django import template

from provisioning.spec import qualified_name

register = template.Library()


@register.filter
def what_it_did(event, user_id) -> str:
    uid = str(user_id)
    parts: list[str] = []
    order = list(event.tables or [])
    created = [t for t, ids in (event.rows_created or {}).items() if isinstance(ids, list) and uid in ids]
    created.sort(key=lambda t: (order.index(t) if t in order else len(order), t))
    if created:
        verb = "would create" if event.outcome == event.Outcome.DRY_RUN else "created"
        parts.append(f"{verb} {', '.join(qualified_name(t) for t in created)}")
    changes = (event.detail or {}).get("changes") if event.action == event.Action.SYNC_VALUES else None
    if isinstance(changes, dict):
        for column, entries in changes.items():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, list) and len(entry) == 3 and str(entry[0]) == uid:
                    parts.append(f"{column}: {_shown(entry[1])} → {_shown(entry[2])}")
    for item in event.not_provisioned or []:
        if isinstance(item, dict) and str(item.get("user_id")) == uid:
            table = item.get("table", "")
            where = "every table" if table == "*" else qualified_name(str(table))
            parts.append(f"not written to {where}: {item.get('reason', '')}")
    detail = event.detail if isinstance(event.detail, dict) else {}
    if str(event.action).startswith("account_"):
        # Fixing the account (docs/fixing-accounts.md): what it did or why not, and why.
        said = detail.get("summary") or detail.get("error")
        if said:
            parts.append(str(said))
        if detail.get("reason"):
            parts.append(f"reason: {detail['reason']}")
    return "; ".join(parts)


def _shown(value) -> str:
    return "NULL" if value is None else '""' if value == "" else str(value)
