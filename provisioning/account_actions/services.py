"""The account actions: each is a keyword-only function that checks its permission, asks
for a reason, calls Supabase Auth (or, to sign out, deletes the user's sessions), writes ONE
audit event (staff member, reason, the request without the key, Auth's answer) and returns
what it did. A failure raises `AccountActionFailed` (one clear message; its event says what
happened); a refusal `AccountActionDenied` (403, recorded).

They take no approval: a gate (a second person) can be put in front of any of them by
calling it once approved."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction

from provisioning.account_actions import client, statements
from provisioning.account_actions.client import AccountActionFailed
from provisioning.account_actions.selectors import user_factors
from provisioning.actors import Actor
from provisioning.audit.recording import record_denied, record_event
from provisioning.drift.columns import withheld_columns
from provisioning.drift.selectors import removal_order
from provisioning.engine import catalog
from provisioning.errors import first_line
from provisioning.models import AuditEvent

Action = AuditEvent.Action
Outcome = AuditEvent.Outcome

#: The permission (codename on AuthUser) each action needs. Unban is a ban's undoing.
PERMISSIONS = {
    Action.ACCOUNT_CONFIRM: "account_confirm",
    Action.ACCOUNT_RESEND: "account_resend",
    Action.ACCOUNT_RESET_PASSWORD: "account_reset_password",
    Action.ACCOUNT_BAN: "account_ban",
    Action.ACCOUNT_UNBAN: "account_ban",
    Action.ACCOUNT_SIGNOUT: "account_signout",
    Action.ACCOUNT_REMOVE_MFA: "account_remove_mfa",
    Action.ACCOUNT_DELETE: "account_delete",
}

#: "Forever", as Supabase Studio bans: 100 years.
BAN_FOREVER = "876000h"
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


class AccountActionDenied(PermissionDenied):
    """The staff member may not take this action (recorded as denied)."""


@dataclass
class ActionResult:
    action: str
    user_id: uuid.UUID
    summary: str
    detail: dict = field(default_factory=dict)
    audit_event_id: int | None = None


def may(actor: Actor, action: str) -> bool:
    """May `actor` take `action`? Staff need its permission; the command line acts with the
    server's own settings (as `provision` does)."""
    if actor.user is None:
        return actor.channel == AuditEvent.Channel.CLI
    return bool(actor.user.is_active and actor.user.has_perm(f"provisioning.{PERMISSIONS[action]}"))


def refuse_unless_allowed(*, actor: Actor, action: str, user_id=None, detail: dict | None = None) -> None:
    """AccountActionDenied, recorded, unless `actor` may take `action`."""
    if may(actor, action):
        return
    record_denied(actor=actor, action=action, target_user_ids=[user_id] if user_id else [], detail=detail or {})
    raise AccountActionDenied("You do not have permission to take this action on an account.")


def ban_duration(text: str) -> tuple[str, timedelta | None]:
    """A ban's length as Auth takes it (a Go duration, in whole hours or minutes) and as a
    timedelta (None: forever). Accepts 30m, 24h, 7d, 1d12h, forever. ValueError otherwise."""
    text = (text or "").strip().lower()
    if text in ("forever", "permanent", BAN_FOREVER):
        return BAN_FOREVER, None
    found = _DURATION.match(text)
    if not text or not found:
        raise ValueError(f"Ban duration {text!r} is not a duration: use e.g. 30m, 24h, 7d or forever.")
    days, hours, minutes = (int(part or 0) for part in found.groups())
    total = timedelta(days=days, hours=hours, minutes=minutes)
    if total <= timedelta(0):
        raise ValueError("A ban must last at least a minute (unban to end one).")
    whole_hours, rest = divmod(int(total.total_seconds()) // 60, 60)
    return (f"{whole_hours}h{rest}m" if rest else f"{whole_hours}h"), total


# --- shared steps --------------------------------------------------------------------------


def _auth_user(user_id) -> dict | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, email, email_confirmed_at, banned_until, deleted_at FROM auth.users WHERE id = %s", [user_id]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip(("id", "email", "email_confirmed_at", "banned_until", "deleted_at"), row, strict=True))


def _begin(*, actor: Actor, action: str, user_id, reason: str) -> tuple[dict, str]:
    """Permission, reason and a user that still exists, in that order; (user, reason)."""
    refuse_unless_allowed(actor=actor, action=action, user_id=user_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("A reason is required: say why (it is kept in the audit log).")
    user = _auth_user(user_id)
    if user is None:
        _fail(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=[],
            exc=AccountActionFailed("This user no longer exists in auth.users (deleted meanwhile?).", kind="gone"),
        )
    return user, reason


def _fail(*, actor, action, user_id, reason, requests, exc: AccountActionFailed, outcome=Outcome.FAILED, **detail):
    """Record the failure (own transaction) and raise `exc`, carrying the event's id."""
    with transaction.atomic():
        event = _record_failure(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            exc=exc,
            outcome=outcome,
            **detail,
        )
    exc.audit_event_id = event.pk
    raise exc


def _record_failure(*, actor, action, user_id, reason, requests, exc, outcome=Outcome.FAILED, **detail) -> AuditEvent:
    return record_event(
        actor=actor,
        action=action,
        outcome=outcome,
        tables=detail.pop("tables", []),
        target_user_ids=[user_id],
        detail={
            "reason": reason,
            "requests": requests,
            "answers": [exc.answer] if exc.answer else [],
            "error": str(exc),
            **detail,
        },
    )


def _done(*, actor, action, user_id, reason, requests, answers, summary, tables=(), **detail) -> ActionResult:
    event = record_event(
        actor=actor,
        action=action,
        outcome=Outcome.SUCCEEDED,
        tables=list(tables),
        target_user_ids=[user_id],
        detail={"reason": reason, "requests": requests, "answers": answers, "summary": summary, **detail},
    )
    return ActionResult(action=action, user_id=user_id, summary=summary, detail=event.detail, audit_event_id=event.pk)


def _admin_path(user_id, *rest) -> str:
    return "/".join(["/admin/users", str(user_id), *map(str, rest)])


def _user_answer(response) -> dict:
    """What the event keeps of Auth's user answer: the fields the action changed, no more."""
    user = response.user
    return {
        "status": 200,
        "email_confirmed_at": str(user.email_confirmed_at) if user.email_confirmed_at else None,
        "banned_until": user.banned_until,
    }


def _update_user(*, actor, action, user_id, reason, body: dict) -> tuple[list, list]:
    """PUT /admin/users/{id} with `body` (idempotent: retried once). (requests, answers)."""
    requests = [{"method": "PUT", "path": _admin_path(user_id), "body": body}]
    try:
        api = client.admin_api()
        response = client.call(api, api.update_user_by_id, str(user_id), body, retry=True)
    except AccountActionFailed as exc:
        _fail(actor=actor, action=action, user_id=user_id, reason=reason, requests=requests, exc=exc)
    return requests, [_user_answer(response)]


def _sign_out(user_id) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statements.SIGN_OUT_EVERYWHERE, [user_id])
        return cursor.rowcount


def _readable(iso: str | None) -> str | None:
    """Auth's timestamp as people read it, in UTC ("11 Dec 2026, 19:12 UTC")."""
    from datetime import UTC

    from django.utils.dateparse import parse_datetime

    when = parse_datetime(iso) if iso else None
    if when is None:
        return iso
    return when.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def token_lifetime_note() -> str:
    seconds = settings.JWT_EXPIRY_SECONDS
    span = (
        f"{seconds // 3600} h"
        if seconds % 3600 == 0
        else f"{seconds // 60} min"
        if seconds % 60 == 0
        else f"{seconds} s"
    )
    return (
        f"Access tokens already issued keep working until they expire (at most {span}, JWT_EXPIRY_SECONDS): "
        "no refresh is possible."
    )


# --- the actions ---------------------------------------------------------------------------


def confirm_email(*, actor: Actor, user_id: uuid.UUID, reason: str) -> ActionResult:
    """Mark the user's email as confirmed (`PUT /admin/users/{id}` with `email_confirm`).
    Idempotent; one event."""
    action = Action.ACCOUNT_CONFIRM
    user, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    requests, answers = _update_user(
        actor=actor, action=action, user_id=user_id, reason=reason, body={"email_confirm": True}
    )
    was = " (it was already confirmed)" if user["email_confirmed_at"] else ""
    with transaction.atomic():
        return _done(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            answers=answers,
            summary=f"Email of {user['email'] or user_id} confirmed{was}.",
        )


def _email_of(*, actor, action, user, reason) -> str:
    if not user["email"]:
        _fail(
            actor=actor,
            action=action,
            user_id=user["id"],
            reason=reason,
            requests=[],
            exc=AccountActionFailed("This user has no email address: Auth cannot e-mail them."),
        )
    return user["email"]


def resend_confirmation(*, actor: Actor, user_id: uuid.UUID, reason: str) -> ActionResult:
    """E-mail the user their sign-up confirmation again, through the public `/resend` (the
    user receives it; staff never see a link). Not retried (a second e-mail). One event."""
    action = Action.ACCOUNT_RESEND
    user, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    email = _email_of(actor=actor, action=action, user=user, reason=reason)
    requests = [{"method": "POST", "path": "/resend", "body": {"type": "signup", "email": email}}]
    if user["email_confirmed_at"]:
        _fail(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=[],
            exc=AccountActionFailed("This email is already confirmed: there is no confirmation to resend."),
        )
    try:
        api = client.public_api()
        client.call(api, api.resend, {"type": "signup", "email": email})
    except AccountActionFailed as exc:
        _fail(actor=actor, action=action, user_id=user_id, reason=reason, requests=requests, exc=exc)
    with transaction.atomic():
        return _done(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            answers=[{"status": 200}],
            summary=f"Confirmation email sent again to {email}.",
        )


def send_password_reset(*, actor: Actor, user_id: uuid.UUID, reason: str) -> ActionResult:
    """E-mail the user a password-reset link through the public `/recover`. The link goes
    to the user only: it is never shown or recorded (a link in staff hands is a way into the
    account). Not retried. One event."""
    action = Action.ACCOUNT_RESET_PASSWORD
    user, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    email = _email_of(actor=actor, action=action, user=user, reason=reason)
    requests = [{"method": "POST", "path": "/recover", "body": {"email": email}}]
    try:
        api = client.public_api()
        client.call(api, api.reset_password_for_email, email)
    except AccountActionFailed as exc:
        _fail(actor=actor, action=action, user_id=user_id, reason=reason, requests=requests, exc=exc)
    with transaction.atomic():
        return _done(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            answers=[{"status": 200}],
            summary=f"Password-reset email sent to {email}.",
        )


def ban_user(*, actor: Actor, user_id: uuid.UUID, reason: str, duration: str) -> ActionResult:
    """Ban the user for `duration` (30m, 24h, 7d, forever: `ban_duration` on `PUT
    /admin/users/{id}`, retried once) and sign them out everywhere (their sessions deleted,
    so no refresh). Already-issued access tokens live until they expire: the summary says
    how long. One event; `PARTIAL` when the ban held but the sign-out failed."""
    action = Action.ACCOUNT_BAN
    refuse_unless_allowed(actor=actor, action=action, user_id=user_id)
    go_duration, _ = ban_duration(duration)
    _, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    requests, answers = _update_user(
        actor=actor, action=action, user_id=user_id, reason=reason, body={"ban_duration": go_duration}
    )
    until = _readable(answers[0].get("banned_until"))
    requests.append({"sql": statements.SIGN_OUT_EVERYWHERE})
    try:
        with transaction.atomic():
            ended = _sign_out(user_id)
            answers.append({"sessions_ended": ended})
            return _done(
                actor=actor,
                action=action,
                user_id=user_id,
                reason=reason,
                requests=requests,
                answers=answers,
                tables=["auth.sessions"],
                summary=f"Banned until {until or 'further notice'}; signed out of {ended} session(s). "
                + token_lifetime_note(),
                duration=go_duration,
                access_token_seconds=settings.JWT_EXPIRY_SECONDS,
            )
    except DatabaseError as exc:
        _fail(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            outcome=Outcome.PARTIAL,
            exc=AccountActionFailed(
                f"Banned until {until}, but signing out failed ({first_line(exc)}): open sessions can refresh "
                "until the ban is seen; use Sign out everywhere.",
                kind="database",
                answer=answers[0],
            ),
        )


def unban_user(*, actor: Actor, user_id: uuid.UUID, reason: str) -> ActionResult:
    """End a ban (`ban_duration: "none"`, retried once). One event. Needs the ban permission."""
    action = Action.ACCOUNT_UNBAN
    user, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    requests, answers = _update_user(
        actor=actor, action=action, user_id=user_id, reason=reason, body={"ban_duration": "none"}
    )
    with transaction.atomic():
        return _done(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            answers=answers,
            summary=f"{user['email'] or user_id} is no longer banned.",
        )


def sign_out_everywhere(*, actor: Actor, user_id: uuid.UUID, reason: str) -> ActionResult:
    """Delete the user's sessions (`DELETE FROM auth.sessions WHERE user_id = …`: Supabase
    has no admin sign-out endpoint; refresh tokens go with them), in one transaction with
    the event. The only write to `auth` this dashboard makes. Needs no API settings."""
    action = Action.ACCOUNT_SIGNOUT
    _, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    requests = [{"sql": statements.SIGN_OUT_EVERYWHERE}]
    try:
        with transaction.atomic():
            ended = _sign_out(user_id)
            return _done(
                actor=actor,
                action=action,
                user_id=user_id,
                reason=reason,
                requests=requests,
                answers=[{"sessions_ended": ended}],
                tables=["auth.sessions"],
                summary=f"Signed out of {ended} session(s). " + token_lifetime_note(),
                access_token_seconds=settings.JWT_EXPIRY_SECONDS,
            )
    except DatabaseError as exc:
        _fail(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            exc=AccountActionFailed(f"Could not sign the user out: {first_line(exc)}", kind="database"),
        )


def remove_mfa_factor(
    *, actor: Actor, user_id: uuid.UUID, reason: str, factor_id: uuid.UUID | None = None, every: bool = False
) -> ActionResult:
    """Remove one MFA factor (`factor_id`) or all of them (`every`), one `DELETE
    /admin/users/{id}/factors/{factor}` each (not retried). Factors go one by one: when Auth
    fails part-way, the event (`PARTIAL`) and the message say which were removed."""
    action = Action.ACCOUNT_REMOVE_MFA
    refuse_unless_allowed(actor=actor, action=action, user_id=user_id)
    if bool(factor_id) == bool(every):
        raise ValueError("Choose one factor, or all of them.")
    _, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    factors = user_factors(user_id)
    if factor_id:
        factors = [f for f in factors if str(f["id"]) == str(factor_id)]
    if not factors:
        _fail(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=[],
            exc=AccountActionFailed(
                "This user has no such MFA factor (removed meanwhile?)."
                if factor_id
                else "This user has no MFA factor.",
                kind="gone",
            ),
        )
    requests, answers, removed = [], [], []
    for factor in factors:
        requests.append({"method": "DELETE", "path": _admin_path(user_id, "factors", factor["id"])})
        try:
            api = client.admin_api()
            client.call(api, api.mfa.delete_factor, {"user_id": str(user_id), "id": str(factor["id"])})
        except AccountActionFailed as exc:
            if removed:
                exc = AccountActionFailed(
                    f"Removed {len(removed)} of {len(factors)} factors; then: {exc}", kind=exc.kind, answer=exc.answer
                )
            _fail(
                actor=actor,
                action=action,
                user_id=user_id,
                reason=reason,
                requests=requests,
                outcome=Outcome.PARTIAL if removed else Outcome.FAILED,
                exc=exc,
                removed_factors=_described(removed),
            )
        answers.append({"status": 200, "factor_id": str(factor["id"])})
        removed.append(factor)
    with transaction.atomic():
        return _done(
            actor=actor,
            action=action,
            user_id=user_id,
            reason=reason,
            requests=requests,
            answers=answers,
            summary=f"Removed {len(removed)} MFA factor(s): {', '.join(_label(f) for f in removed)}.",
            removed_factors=_described(removed),
        )


def _described(factors) -> list[dict]:
    return [{**f, "id": str(f["id"])} for f in factors]


def _label(factor) -> str:
    return f"{factor['type']} “{factor['name'] or 'unnamed'}”"


# --- delete --------------------------------------------------------------------------------


def delete_blockers(user_id) -> list[str]:
    """Why deleting the user with their app rows would lose rows it does not record, or fail
    for certain: rows of tables outside the spec that point at the user's app rows or at the
    auth user itself. Reads only."""
    order = removal_order()
    names = {(s.schema, s.name) for s in order}
    found = []
    with connection.cursor() as cursor:
        for spec in order:
            for schema, table, fk in catalog.foreign_keys_to(spec.schema, spec.name, same_schema=True):
                if (schema, table) in names:
                    continue
                cursor.execute(statements.rows_pointing_at_user_rows(spec, schema, table, fk), {"user": user_id})
                (n,) = cursor.fetchone()
                if n:
                    found.append(
                        f"{n} row(s) of {schema}.{table} point at the user's {spec.qualified_name} ({fk.name})"
                    )
        for schema, table, fk in catalog.foreign_keys_to("auth", "users"):
            if (schema, table) in names or len(fk.columns) != 1:
                continue
            cursor.execute(statements.rows_pointing_at_auth_user(schema, table, fk), {"user": user_id})
            (n,) = cursor.fetchone()
            if n:
                found.append(f"{n} row(s) of {schema}.{table} point at the auth user ({fk.name})")
    return found


def withheld_for_delete() -> dict[str, list[str]]:
    """Per spec table, the columns a deleted user's rows are recorded without (secrets)."""
    return {spec.qualified_name: withheld_columns(spec) for spec in removal_order()}


def delete_user(*, actor: Actor, user_id: uuid.UUID, reason: str, soft: bool = False) -> ActionResult:
    """Delete the user's app rows (every spec table, children first) and then the auth user
    (`DELETE /admin/users/{id}`, `should_soft_delete` = `soft`; not retried).

    Order, and why: the app rows go first, in their own committed transaction, because
    Auth's own delete of auth.users may have to lock them (an app key to auth.users with ON
    DELETE CASCADE): holding them in an open transaction while waiting on Auth would make
    the two wait on each other until the timeout. Their full rows stay in this process's
    memory during the call; if Auth refuses, fails or times out (and the user is still
    there), they are put back, parents first, in the transaction that records the event.
    The event keeps the removed rows without their secret columns (named), as orphan
    removal does. Refused before anything is touched when rows outside the spec point at
    the user (`delete_blockers`)."""
    action = Action.ACCOUNT_DELETE
    user, reason = _begin(actor=actor, action=action, user_id=user_id, reason=reason)
    order = removal_order()
    tables = [spec.qualified_name for spec in order]
    requests = [{"method": "DELETE", "path": _admin_path(user_id), "body": {"should_soft_delete": soft}}]
    common = {"actor": actor, "action": action, "user_id": user_id, "reason": reason, "tables": tables}
    try:
        blockers = delete_blockers(user_id)
    except DatabaseError as exc:
        _fail(
            **common,
            requests=[],
            exc=AccountActionFailed(f"Not deleted, nothing changed: {first_line(exc)}", kind="database"),
        )
    if blockers:
        _fail(
            **common,
            requests=[],
            exc=AccountActionFailed(
                "Not deleted, nothing changed: " + "; ".join(blockers) + ". Remove or reassign those rows first."
            ),
        )
    try:
        api = client.admin_api()  # not set up: refused before any row is touched
    except AccountActionFailed as exc:
        _fail(**common, requests=[], exc=exc)
    withheld = withheld_for_delete()
    taken: list[tuple] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for spec in order:
                cursor.execute(statements.take_user_rows(spec), {"user": user_id})
                taken.append((spec, [row[0] for row in cursor.fetchall()]))
    except DatabaseError as exc:
        api.close()
        _fail(
            **common,
            requests=[],
            exc=AccountActionFailed(f"Not deleted, nothing changed: {first_line(exc)}", kind="database"),
        )
    kept = {
        spec.qualified_name: [_without(json.loads(row), withheld[spec.qualified_name]) for row in rows]
        for spec, rows in taken
    }
    about_rows = {
        "removed": {table: rows for table, rows in kept.items() if rows},
        "withheld_columns": {table: cols for table, cols in withheld.items() if cols},
    }
    count = sum(len(rows) for rows in kept.values())
    try:
        client.call(api, api.delete_user, str(user_id), soft)
    except AccountActionFailed as exc:
        if exc.kind == "timeout" and _deleted_anyway(user_id, soft):
            with transaction.atomic():
                return _done(
                    **common,
                    requests=requests,
                    answers=[exc.answer],
                    summary=_deleted_summary(user, soft, count)
                    + " (Auth answered late: the user was checked afterwards.)",
                    **about_rows,
                )
        _put_back_or_say(common=common, requests=requests, exc=exc, taken=taken, count=count, about_rows=about_rows)
    with transaction.atomic():
        return _done(
            **common,
            requests=requests,
            answers=[{"status": 200}],
            summary=_deleted_summary(user, soft, count),
            **about_rows,
        )


def _deleted_summary(user, soft, count) -> str:
    how = "soft-deleted (kept in auth.users, marked deleted, email obfuscated)" if soft else "deleted"
    return f"User {user['email'] or user['id']} {how}, with {count} app row(s), kept in the audit event."


def _deleted_anyway(user_id, soft) -> bool:
    user = _auth_user(user_id)
    return user is None or (soft and user["deleted_at"] is not None)


def _put_back_or_say(*, common, requests, exc, taken, count, about_rows) -> None:
    """Auth did not delete the user: put their app rows back (parents first) with the event,
    or, when that fails, record that the rows are in the event. Raises `exc` (amended)."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                for spec, rows in reversed(taken):
                    for row in rows:
                        cursor.execute(statements.put_row_back(spec), {"row": row})
            message = f"Not deleted: {exc} The user's {count} app row(s) were put back; nothing was lost."
            failure = AccountActionFailed(message, kind=exc.kind, answer=exc.answer)
            event = _record_failure(**common, requests=requests, exc=failure, app_rows="put back", **about_rows)
    except DatabaseError as restore_exc:
        message = (
            f"Not deleted: {exc} The user's {count} app row(s) could not be put back ({first_line(restore_exc)}): "
            "they are kept in the audit event, secret columns withheld."
        )
        failure = AccountActionFailed(message, kind=exc.kind, answer=exc.answer)
        with transaction.atomic():
            event = _record_failure(**common, requests=requests, exc=failure, app_rows="not put back", **about_rows)
    failure.audit_event_id = event.pk
    raise failure


def _without(row: dict, columns: list[str]) -> dict:
    return {name: value for name, value in row.items() if name not in columns}


#: Each action by the name the page's URLs and the command line use: (audit action, service).
BY_NAME = {
    "confirm": (Action.ACCOUNT_CONFIRM, confirm_email),
    "resend": (Action.ACCOUNT_RESEND, resend_confirmation),
    "reset-password": (Action.ACCOUNT_RESET_PASSWORD, send_password_reset),
    "ban": (Action.ACCOUNT_BAN, ban_user),
    "unban": (Action.ACCOUNT_UNBAN, unban_user),
    "signout": (Action.ACCOUNT_SIGNOUT, sign_out_everywhere),
    "remove-mfa": (Action.ACCOUNT_REMOVE_MFA, remove_mfa_factor),
    "delete": (Action.ACCOUNT_DELETE, delete_user),
}
