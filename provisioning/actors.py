"""Who is acting: a staff member on the web, a background task, or the command line."""

from __future__ import annotations

import getpass
import ipaddress
from dataclasses import dataclass
from typing import Any

from provisioning.models import AuditEvent

PROVISION_PERMISSION = "provisioning.provision_users"
#: What every support page asks to be seen: both support groups have it.
VIEW_PERMISSION = "provisioning.view_authuser"


def client_address(request) -> str | None:
    """REMOTE_ADDR when it is a valid IP address (the audit column is typed), else None."""
    if request is None:
        return None
    value = str(request.META.get("REMOTE_ADDR") or "").strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


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

    def may_provision(self) -> bool:
        if self.user is None:
            # The command line acts with the database role's own rights.
            return self.channel == AuditEvent.Channel.CLI
        return bool(self.user.is_active and self.user.has_perm(PROVISION_PERMISSION))
