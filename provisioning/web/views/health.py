"""The "Provisioning health" page: the diagnostics report, a PostgREST schema cache
question, and two audited actions (simulate a sign-up, reload PostgREST's schema cache).

Thin: permissions, parsing and rendering here; the checks live in the `diagnostics` package.
Seeing the page needs `provisioning.view_authuser`; the actions need
`provisioning.provision_users` (a refusal is a 403 and a denied AuditEvent).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from provisioning import diagnostics, spec
from provisioning.actors import VIEW_PERMISSION, Actor, may_provision
from provisioning.approvals import services as approvals
from provisioning.audit.recording import record_denied
from provisioning.engine import triggergen
from provisioning.engine.plans import spec_problems
from provisioning.hooks import watchdog
from provisioning.models import AuditEvent, AuthUser

TEMPLATE = "admin/provisioning/health.html"
SPEC_PROBLEM_TEMPLATE = "admin/provisioning/health_spec_problem.html"


class SchemaCacheForm(forms.Form):
    message = forms.CharField(
        label="Error message or column",
        max_length=2000,
        widget=forms.TextInput(
            attrs={"size": 80, "placeholder": "Could not find the 'id' column of 'profiles' in the schema cache"}
        ),
        help_text="Paste the API's error, or give table.column, or a column with the table below.",
    )
    table = forms.CharField(label="Table", max_length=63, required=False)


def _require_viewer(request) -> None:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied("You do not have permission to see provisioning health.")


def _require_provisioner(request, action: str) -> Actor:
    """The acting staff member, or a recorded denial and a 403."""
    actor = Actor.from_request(request)
    if not (request.user.has_perm(VIEW_PERMISSION) and actor.may_provision()):
        record_denied(actor=actor, action=action, detail={"page": "provisioning health"})
        raise PermissionDenied("You do not have permission to do this.")
    return actor


def _render(request, *, simulation: diagnostics.Check | None = None, status: int = 200):
    form = SchemaCacheForm(request.GET or None)
    schema_cache = None
    if form.is_valid():
        try:
            schema_cache = diagnostics.check_schema_cache(form.cleaned_data["message"], form.cleaned_data["table"])
        except diagnostics.BadQuestion as exc:
            form.add_error("message", str(exc))
    report = diagnostics.run_checks()
    context = {
        "generated_trigger_sql": _generated_trigger_sql([*report.checks, *([simulation] if simulation else [])]),
        **admin.site.each_context(request),
        "opts": AuthUser._meta,
        "title": "Provisioning health",
        "report": report,
        "simulation": simulation,
        "schema_cache_form": form,
        "schema_cache": schema_cache,
        "can_act": may_provision(request.user),
        "watchdog": watchdog.status(),
        "approvals": {
            "on": approvals.approvals_on(),
            "ttl": approvals.ttl_text(),
            "threshold": approvals.threshold_users(),
        },
        "spec_file": spec.SPEC_FILE,
        "spec_tables": [
            {
                "name": table.qualified_name,
                "label": table.label,
                "key": table.key,
                "values": [(column, value.describe()) for column, value in table.values.items()],
            }
            for table in spec.SPEC
        ],
    }
    return TemplateResponse(request, TEMPLATE, context, status=status)


def _generated_trigger_sql(checks: list[diagnostics.Check]) -> str | None:
    """The sign-up function and trigger `provisioning_trigger_sql` prints, when a check's fix is
    that SQL (shown with it on the page); None otherwise, or when it cannot be generated."""
    if not any(check.details.get(diagnostics.GENERATED_TRIGGER) for check in checks):
        return None
    try:
        return triggergen.trigger_sql()
    except ValueError:  # a spec the generator refuses: the spec checks say why
        return None


@require_GET
def health_view(request):
    _require_viewer(request)
    problems = spec_problems()
    if problems:
        # Nothing else can run on a spec that cannot be used: say why, and only that.
        context = {
            **admin.site.each_context(request),
            "opts": AuthUser._meta,
            "title": "Provisioning health",
            "spec_problems": problems,
            "spec_file": spec.SPEC_FILE,
        }
        return TemplateResponse(request, SPEC_PROBLEM_TEMPLATE, context, status=503)
    return _render(request)


@require_POST
def simulate_signup_view(request):
    actor = _require_provisioner(request, AuditEvent.Action.SIMULATE_SIGNUP)
    simulation = diagnostics.simulate_signup(actor=actor)
    return _render(request, simulation=simulation)


@require_POST
def reload_schema_cache_view(request):
    actor = _require_provisioner(request, AuditEvent.Action.RELOAD_SCHEMA_CACHE)
    diagnostics.reload_schema_cache(actor=actor)
    messages.success(request, "Sent NOTIFY pgrst, 'reload schema': PostgREST reloads its schema cache in a moment.")
    return HttpResponseRedirect(reverse("provisioning-health"))


urlpatterns = [
    path("admin/tools/health/", admin.site.admin_view(health_view), name="provisioning-health"),
    path(
        "admin/tools/health/simulate-signup/",
        admin.site.admin_view(simulate_signup_view),
        name="provisioning-health-simulate-signup",
    ),
    path(
        "admin/tools/health/reload-schema-cache/",
        admin.site.admin_view(reload_schema_cache_view),
        name="provisioning-health-reload-schema-cache",
    ),
]
