"""The dashboard in Django's admin: one module per ModelAdmin (auth users, app tables, the
audit log, staff accounts and groups), the shared list behaviour in `base`. The site
itself (its home page) is web/site.py.
Importing this package registers the ModelAdmins (`ProvisioningConfig.ready`)."""

from provisioning.web.admin import app_tables, approvals, audit, auth_users, staff  # noqa: F401
