"""`manage.py check --deploy` says when the account actions cannot run (DEBUG off only: a
development checkout without a Supabase project is normal)."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from provisioning.account_actions.client import unavailable_reason


def account_actions_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    found = []
    if reason := unavailable_reason():
        found.append(
            checks.Warning(
                f"The account actions (confirm, ban, remove MFA, delete...) are {reason}.",
                hint="Set SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY (docs/fixing-accounts.md); the user's page "
                "shows the actions as unavailable until then.",
                id="provisioning.W020",
            )
        )
    if (reason := unavailable_reason(public=True)) and "SUPABASE_URL" not in reason:
        found.append(
            checks.Warning(
                f"The e-mails to a user (resend the confirmation, password reset) are {reason}.",
                hint="Set SUPABASE_ANON_KEY (docs/fixing-accounts.md).",
                id="provisioning.W021",
            )
        )
    return found
