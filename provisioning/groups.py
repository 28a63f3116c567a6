"""The two support groups, created by a data migration (and re-created in tests)."""

VIEWERS = "Support viewers"
PROVISIONERS = "Support provisioners"

VIEW_PERMISSIONS = [
    ("provisioning", "view_authuser"),
    ("provisioning", "view_appuser"),
    ("provisioning", "view_profile"),
    ("provisioning", "view_wallet"),
    ("provisioning", "view_auditevent"),
]
PROVISION_PERMISSIONS = [*VIEW_PERMISSIONS, ("provisioning", "provision_users")]


def ensure_support_groups(apps) -> None:
    """Create both groups with their permissions; idempotent. `apps` is a migration's or
    `django.apps.apps`."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        # Permissions are normally created after all migrations; make them exist now.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, wanted in ((VIEWERS, VIEW_PERMISSIONS), (PROVISIONERS, PROVISION_PERMISSIONS)):
        group, _ = Group.objects.get_or_create(name=name)
        perms = [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in wanted]
        group.permissions.add(*perms)
