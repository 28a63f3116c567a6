"""URLs the admin does not give for free. Mounted at the site root, before the admin:
each module names its full paths (staff pages under admin/tools/)."""

from provisioning import audit_views, diagnostics_views, home_views, jobs_views

urlpatterns = [
    *home_views.urlpatterns,
    *diagnostics_views.urlpatterns,
    *audit_views.urlpatterns,
    *jobs_views.urlpatterns,
]
