from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Eloity provisioning"
admin.site.site_title = "Eloity admin"
admin.site.index_title = "Support dashboard"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
]
