"""The kinds of action a request can hold. Registering one is a few lines:

    register(
        "delete_user",
        label="Delete a user",
        permission="provisioning.delete_auth_user",
        run=lambda *, actor, params: {"summary": delete(actor=actor, **params).summary()},
        describe=lambda params, snapshot: f"Delete user {params['user_id']}",
        snapshot=lambda params: account_fingerprint(params["user_id"]),  # optional
        on_change="refuse",  # or "run": what to do when the snapshot differs at approval
    )

`run(*, actor, params)` runs the action as the approver and returns JSON: its "summary"
is shown on the request's page. It raises to fail (the request is then "failed", with the
error's first line). `snapshot(params)` returns JSON describing what the action would act
on; at approval it is taken again, and when it differs the request either runs against the
new state and says so (`on_change="run"`) or is refused unrun (`on_change="refuse"`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Run = Callable[..., dict]
Describe = Callable[[dict, dict], str]
Snapshot = Callable[[dict], dict]

ON_CHANGE = ("run", "refuse")


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    #: The permission the requester needs, and the approver too ("app_label.codename").
    permission: str
    run: Run
    describe: Describe
    snapshot: Snapshot | None = None
    on_change: str = "run"


_KINDS: dict[str, Kind] = {}


class UnknownKind(LookupError):
    """No kind of that name is registered."""


def register(
    name: str,
    *,
    permission: str,
    run: Run,
    describe: Describe,
    snapshot: Snapshot | None = None,
    on_change: str = "run",
    label: str | None = None,
) -> Kind:
    """Register (or replace: a test may) the kind `name`; returns it."""
    if on_change not in ON_CHANGE:
        raise ValueError(f"on_change must be one of {', '.join(ON_CHANGE)}, not {on_change!r}")
    if "." not in permission:
        raise ValueError(f"permission must be 'app_label.codename', not {permission!r}")
    kind = Kind(
        name=name,
        label=label or name.replace("_", " ").capitalize(),
        permission=permission,
        run=run,
        describe=describe,
        snapshot=snapshot,
        on_change=on_change,
    )
    _KINDS[name] = kind
    return kind


def unregister(name: str) -> None:
    _KINDS.pop(name, None)


def kind(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise UnknownKind(f"no approval kind {name!r} is registered") from None


def kinds() -> dict[str, Kind]:
    return dict(_KINDS)


def label_of(name: str) -> str:
    found: Any = _KINDS.get(name)
    return found.label if found else name
