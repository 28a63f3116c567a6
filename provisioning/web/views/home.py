"""The home page's content: the state of provisioning above the admin's index
(`SupportAdminSite.index` in web/site.py renders it)."""

from __future__ import annotations

from provisioning.actors import VIEW_PERMISSION
from provisioning.spec import SPEC
from provisioning.web import charts, dashboard

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
            for table, label in ((spec.name, f"Missing {spec.label}") for spec in SPEC)
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
