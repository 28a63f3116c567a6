from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate

        from provisioning import signals

        pre_migrate.connect(signals.create_django_schema, dispatch_uid="eloity_create_django_schema")

        from provisioning.audit import access

        # Sign-ins, failed sign-ins and sign-outs land in the audit log.
        access.connect()

        # The ModelAdmins live in web/admin/, not in an `admin` module autodiscovery finds.
        import provisioning.web.admin  # noqa: F401
