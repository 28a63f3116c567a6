"""Who is acting: a staff member on the web, a background task, or the command line."""

from __future__ import annotations

import functools
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

    The server's peer (REMOTE_ADDR) is the client unless it is one of `TRUSTED_PROXIES`
    (addresses or CIDR ranges). Only then is `X-Forwarded-For` read, from the right: each
    trusted proxy appended the address it received the request from, so the entry is taken
    and, if that address is a trusted proxy too, the one left of it, at most
    `TRUSTED_PROXY_COUNT` steps. The first address that is not a trusted proxy is the
    client; anything further left was written by the client and is never read. So a client
    that reaches the server's port directly, skipping the proxy, is its own REMOTE_ADDR
    whatever header it sends. Invalid addresses give None (the audit column is typed).

    django-axes reads the same function (AXES_CLIENT_IP_CALLABLE), so sign-in throttling,
    /metrics' allowlist, the webhook's refusals and the audit log always name the same
    address. The rule is the one gunicorn's `forwarded_allow_ips` and django-ipware's
    trusted-proxy list apply; written here because it fits in these lines.
    """
    if request is None:
        return None
    address = _ip(request.META.get("REMOTE_ADDR"))
    steps = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    proxies = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")]
    forwarded = [part for part in forwarded if part]
    while address is not None and steps > 0 and forwarded and any(address in net for net in proxies):
        address = _ip(forwarded.pop())
        steps -= 1
    return None if address is None else str(address)


def from_trusted_proxy(request) -> bool:
    """Did one of TRUSTED_PROXIES send this request (its REMOTE_ADDR)?"""
    address = _ip(request.META.get("REMOTE_ADDR"))
    proxies = _networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    return address is not None and any(address in net for net in proxies)


def _ip(value) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(str(value or "").strip())
    except ValueError:
        return None
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
    return getattr(address, "ipv4_mapped", None) or address


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


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
