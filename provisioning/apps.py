from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate

        from provisioning import signals

        pre_migrate.connect(signals.create_django_schema, dispatch_uid="eloity_create_django_schema")

        from provisioning import auth_audit

        # Sign-ins, failed sign-ins and sign-outs land in the audit log.
        auth_audit.connect()
