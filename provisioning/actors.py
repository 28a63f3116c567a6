"""Who is acting: a staff member on the web, a background task, or the command line."""

from __future__ import annotations

import getpass
import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from provisioning.models import AuditEvent

PROVISION_PERMISSION = "provisioning.provision_users"
REMOVE_ORPHANS_PERMISSION = "provisioning.remove_orphans"
#: What every support page asks to be seen: both support groups have it.
VIEW_PERMISSION = "provisioning.view_authuser"


def client_address(request) -> str | None:
    """The address of the person making the request, as the deployment says to read it.

    With `TRUSTED_PROXY_COUNT` = 0 (the default: nothing sits in front of the server), only
    REMOTE_ADDR counts and `X-Forwarded-For` is ignored: anyone can send that header. With
    N trusted proxies in front, each appends the address it received the request from, so
    the client is the N-th entry from the right of `X-Forwarded-For`; anything further left
    was written by the client and is never read. A header with fewer entries than that
    means the request skipped a proxy: its leftmost entry is then the nearest address that
    a trusted proxy wrote. Invalid addresses give None (the audit column is typed).

    django-axes reads the same function (AXES_CLIENT_IP_CALLABLE), so sign-in throttling
    and the audit log always name the same address. Written here rather than taken from
    django-ipware, which looks through a dozen headers and prefers public addresses: the
    rule that matters is exactly the deployment's proxy count, and it fits in these lines.
    """
    if request is None:
        return None
    value = str(request.META.get("REMOTE_ADDR") or "")
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies > 0:
        forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            value = forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def may_provision(user) -> bool:
    """May this staff member provision users? The one answer every page and service uses
    (the services check it again through `Actor.may_provision`, so no page can forget)."""
    return bool(user is not None and user.is_active and user.has_perm(PROVISION_PERMISSION))


@dataclass(frozen=True)
class Actor:
    username: str
    channel: str
    user: Any = None
    address: str | None = None

    @classmethod
    def from_request(cls, request) -> Actor:
        return cls(
            username=request.user.get_username(),
            channel=AuditEvent.Channel.WEB,
            user=request.user,
            address=client_address(request),
        )

    @classmethod
    def command_line(cls) -> Actor:
        """The operating-system user running a management command."""
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return cls(username=f"os:{name}", channel=AuditEvent.Channel.CLI)

    @property
    def staff_user(self):
        """The saved Django user behind the actor, or None (the command line)."""
        return self.user if self.user is not None and self.user.pk else None

    def may_remove_orphans(self) -> bool:
        """Staff need `provisioning.remove_orphans`; the command line acts with the database
        role's own rights."""
        if self.user is None:
            return self.channel == AuditEvent.Channel.CLI
        return bool(self.user.is_active and self.user.has_perm(REMOVE_ORPHANS_PERMISSION))

    def may_provision(self) -> bool:
        if self.user is None:
            # The command line acts with the database role's own rights; the sign-up
            # webhook was authenticated by its secret before it got here.
            return self.channel in (AuditEvent.Channel.CLI, AuditEvent.Channel.WEBHOOK)
        return may_provision(self.user)
