"""The home page's content: the state of provisioning above the admin's index
(`SupportAdminSite.index` in web/site.py renders it)."""

from __future__ import annotations

from provisioning.actors import VIEW_PERMISSION
from provisioning.approvals import selectors as approval_selectors
from provisioning.approvals import services as approvals
from provisioning.engine import selectors
from provisioning.hooks import watchdog
from provisioning.spec import SPEC
from provisioning.web import charts, dashboard

#: Who sees the figures; everyone else with staff access gets the admin's plain index.


def home_context(request) -> dict:
    """The figures for the index template, or {} for staff without VIEW_PERMISSION."""
    if not request.user.has_perm(VIEW_PERMISSION):
        return {}
    with selectors.shared_reads():
        # The figures and the health panel read the same whole-population counts: once.
        figures = dashboard.home_figures(recount=request.GET.get("recount") == "1")
        health = dashboard.provisioning_health()
    # Rows provisioning cannot write are a state of their own ("Cannot be provisioned"),
    # not something that needs attention: they are left out of the alerts.
    blocked: dict[str, int] = {}
    for reason, n in figures.cannot_provision_reasons.items():
        table = reason.split(": ", 1)[0]
        blocked[table] = blocked.get(table, 0) + n
    fixable = {spec.name: max(0, figures.missing[spec.name] - blocked.get(spec.name, 0)) for spec in SPEC}
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
            # Needs attention only where provisioning can write something.
            "alert": any(fixable.values()),
        },
        *(
            {
                "id": f"total-missing-{table}",
                "label": label,
                "value": figures.missing[table],
                "url": dashboard.list_url(f"missing_{table}"),
                "alert": bool(fixable[table]),
                **({"note": f"{fixable[table]} can be provisioned"} if blocked.get(table) else {}),
            }
            for table, label in ((spec.name, f"Missing {spec.label}") for spec in SPEC)
        ),
    ]
    return {
        "home": {
            "figures": figures,
            "totals": totals,
            "chart": charts.missing_by_week_svg(figures.weeks),
            "health": health,
            "audit_events": dashboard.latest_audit_events(10),
            "ttl": dashboard.COUNTS_TTL,
            "watchdog": watchdog.status(),
            "cannot_provision_url": dashboard.list_url("cannot"),
            # The two-person rule: requests another staff member may approve.
            "approvals": {
                "on": approvals.approvals_on(),
                "waiting": list(approval_selectors.waiting(limit=10)),
                "count": approval_selectors.waiting_count(),
            },
        }
    }
