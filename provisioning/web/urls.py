"""URLs the admin does not give for free, mounted at the site root before the admin: each
module names its full paths (staff pages under admin/tools/)."""

from provisioning.web.views import health, healthz, hooks, jobs

urlpatterns = [
    *health.urlpatterns,
    *jobs.urlpatterns,
    *healthz.urlpatterns,
    *hooks.urlpatterns,
]
