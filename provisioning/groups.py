"""The support groups, created by data migrations (and re-created in tests)."""

VIEWERS = "Support viewers"
PROVISIONERS = "Support provisioners"
ACCOUNT_ADMINS = "Support account admins"

VIEW_PERMISSIONS = [
    ("provisioning", "view_authuser"),
    ("provisioning", "view_appuser"),
    ("provisioning", "view_profile"),
    ("provisioning", "view_wallet"),
    ("provisioning", "view_auditevent"),
]
PROVISION_PERMISSIONS = [*VIEW_PERMISSIONS, ("provisioning", "provision_users")]
#: Fixing accounts through Supabase Auth: seen only by those who may use it.
ACCOUNT_ACTION_CODENAMES = [
    "account_confirm",
    "account_resend",
    "account_reset_password",
    "account_ban",
    "account_signout",
    "account_remove_mfa",
    "account_delete",
]
ACCOUNT_ADMIN_PERMISSIONS = [*VIEW_PERMISSIONS, *(("provisioning", c) for c in ACCOUNT_ACTION_CODENAMES)]


def ensure_support_groups(apps) -> None:
    """Create the groups with their permissions; idempotent. `apps` is a migration's or
    `django.apps.apps`."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Permissions are normally created after all migrations; make them exist now.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in (
        (VIEWERS, VIEW_PERMISSIONS),
        (PROVISIONERS, PROVISION_PERMISSIONS),
        (ACCOUNT_ADMINS, ACCOUNT_ADMIN_PERMISSIONS),
    ):
        if name == ACCOUNT_ADMINS and Permission.objects.filter(
            content_type__app_label="provisioning", codename__in=ACCOUNT_ACTION_CODENAMES
        ).count() < len(ACCOUNT_ACTION_CODENAMES):
            # An older migration's state (before 0012): the permissions do not exist yet.
            continue
        group, _ = Group.objects.get_or_create(name=name)
        perms = [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in wanted]
        group.permissions.add(*perms)
