"""The home page: the admin index with the state of provisioning on top.

Why this extension point: `AdminSite.index(request, extra_context=...)` is the admin's
documented way to add to its index, and `templates/admin/index.html` extends the admin's
own index (keeping the app list). The project uses the default `admin.site`, so rather
than subclass AdminSite (a settings change) or patch `admin.site.index` at import time
(order-dependent), this module claims the index URL: provisioning/urls.py is mounted
before the admin, so `/admin/` resolves here first, and `reverse("admin:index")` still
gives the same path. `admin.site.admin_view` keeps the admin's login, never_cache and
CSRF behaviour.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from provisioning import charts, dashboard
from provisioning.actors import VIEW_PERMISSION

#: Who sees the figures; everyone else with staff access gets the admin's plain index.


def home_context(request) -> dict:
    """The figures for the index template, or {} for staff without VIEW_PERMISSION."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return {}
    figures = dashboard.home_figures(recount=request.GET.get("recount") == "1")
    totals = [
        {
            "id": "total-auth-users",
            "label": "Live sign-ups",
            "value": figures.auth_users,
            "url": dashboard.list_url(),
        },
        {
            "id": "total-complete",
            "label": "Fully provisioned",
            "value": figures.fully_provisioned,
            "percent": figures.fully_provisioned_percent,
            "url": dashboard.list_url("complete"),
        },
        {
            "id": "total-missing-any",
            "label": "Missing any row",
            "value": figures.missing_any,
            "url": dashboard.list_url("missing_any"),
            "alert": bool(figures.missing_any),
        },
        *(
            {
                "id": f"total-missing-{table}",
                "label": label,
                "value": figures.missing[table],
                "url": dashboard.list_url(f"missing_{table}"),
                "alert": bool(figures.missing[table]),
            }
            for table, label in (
                ("users", "Missing app user"),
                ("profiles", "Missing profile"),
                ("wallets", "Missing wallet"),
            )
        ),
    ]
    return {
        "home": {
            "figures": figures,
            "totals": totals,
            "chart": charts.missing_by_week_svg(figures.weeks),
            "health": dashboard.provisioning_health(),
            "audit_events": dashboard.latest_audit_events(10),
            "ttl": dashboard.COUNTS_TTL,
        }
    }


def home(request):
    return admin.site.index(request, extra_context=home_context(request))


urlpatterns = [path("admin/", admin.site.admin_view(home), name="provisioning_home")]
