from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Eloity provisioning"
admin.site.site_title = "Eloity admin"
admin.site.index_title = "Support dashboard"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("", include("provisioning.urls")),
    path("admin/", admin.site.urls),
]
