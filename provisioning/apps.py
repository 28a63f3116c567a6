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


def model_columns_check(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Every column the unmanaged models declare exists in the live tables (provisioning.E002;
    a model's whole table missing: provisioning.W002). Tagged for the database: it runs
    with `manage.py check --database default` and before `migrate`."""
    if not databases:
        return []
    from django.db import DatabaseError

    from provisioning.diagnostics.models import model_gaps

    try:
        gaps = model_gaps()
    except DatabaseError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        return [checks.Warning(f"Could not read the live tables: {first}", id="provisioning.W003")]
    if any(gap.table == "auth.users" and not gap.column for gap in gaps):
        # Not a Supabase database (yet): one line, not one per model.
        return [
            checks.Warning(
                "auth.users does not exist: DATABASE_URL is not a Supabase project's database",
                hint="Point DATABASE_URL at the project, or run `manage.py load_demo` on the embedded database.",
                id="provisioning.W002",
            )
        ]
    return [
        checks.Error(str(gap), hint="A page reading this model would fail.", id="provisioning.E002")
        if gap.column
        else checks.Warning(str(gap), hint="Its list says so instead of showing rows.", id="provisioning.W002")
        for gap in gaps
    ]


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        checks.register(spec_file_check, "provisioning")
        checks.register(model_columns_check, checks.Tags.database)
        from provisioning.account_actions.checks import account_actions_check

        # A deploy check (`check --deploy`, as production runs it): a checkout without a
        # Supabase project is normal in development, and `migrate` need not say so.
        checks.register(account_actions_check, "provisioning", deploy=True)
        from django.db.models.signals import post_migrate, pre_migrate

        from provisioning import signals

        pre_migrate.connect(signals.create_django_schema, dispatch_uid="eloity_create_django_schema")
        post_migrate.connect(signals.keep_audit_log_append_only, dispatch_uid="eloity_audit_log_append_only")

        from provisioning.audit import access

        # Sign-ins, failed sign-ins and sign-outs land in the audit log.
        access.connect()

        # The actions that need a second staff member's approval (docs/approvals.md).
        import provisioning.approvals.kinds

        # The ModelAdmins live in web/admin/, not in an `admin` module autodiscovery finds.
        import provisioning.web.admin  # noqa: F401
