"""The dashboard in Django's admin: one module per ModelAdmin (auth users, app tables, the
audit log), the shared list behaviour in `base`, the site itself (its home page) in `site`.
Importing this package registers the ModelAdmins (`ProvisioningConfig.ready`)."""

from provisioning.web.admin import app_tables, audit, auth_users  # noqa: F401
