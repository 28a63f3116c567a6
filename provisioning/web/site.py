"""The dashboard's AdminSite: Django's admin with the state of provisioning on its index.

Installed through `SupportAdminConfig` (INSTALLED_APPS), the documented way to replace the
default site: `admin.site`, `@admin.register` and `reverse("admin:...")` all reach it.
Kept outside the `web.admin` package: INSTALLED_APPS imports this before models exist.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class SupportAdminSite(admin.AdminSite):
    site_header = "Eloity provisioning"
    site_title = "Eloity admin"
    index_title = "Support dashboard"
    # The admin's left-hand app list costs a quarter of a 1280 px screen on every page and
    # repeats the home page and the breadcrumbs; the lists need the width more.
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        """The admin's index (its app list kept) with the home page's figures on top."""
        from provisioning.web.views.home import home_context

        return super().index(request, extra_context={**home_context(request), **(extra_context or {})})


class SupportAdminConfig(AdminConfig):
    default_site = "provisioning.web.site.SupportAdminSite"
