from django.apps import AppConfig
from django.core import checks


def spec_file_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """The spec file in force can be read (provisioning.E001). Its tables and columns are
    checked against the database by the provisioning commands and `manage.py check`."""
    from provisioning import spec

    if not spec.SPEC_ERROR:
        return []
    return [
        checks.Error(
            spec.SPEC_ERROR,
            hint="Fix the file PROVISIONING_SPEC names, or unset PROVISIONING_SPEC for Eloity's default.",
            id="provisioning.E001",
        )
    ]


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(spec_file_check, "provisioning")
        from django.db.models.signals import pre_migrate

        from provisioning import signals

        pre_migrate.connect(signals.create_django_schema, dispatch_uid="eloity_create_django_schema")

        from provisioning.audit import access

        # Sign-ins, failed sign-ins and sign-outs land in the audit log.
        access.connect()

        # The ModelAdmins live in web/admin/, not in an `admin` module autodiscovery finds.
        import provisioning.web.admin  # noqa: F401
