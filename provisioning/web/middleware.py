"""Middleware: faults a view did not handle become readable pages instead of a traceback
or a 500 (a lost database connection: 503; a privilege the database role lacks: 503 naming
the GRANT; malformed input that reached the ORM: 400; an
admin list filter value the database cannot take: back to the list, as the admin does),
and times are shown in the staff member's time zone."""

from __future__ import annotations

import logging
import zoneinfo

from django.conf import settings
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import ValidationError
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.defaults import bad_request

from provisioning.actors import from_trusted_proxy
from provisioning.errors import drop_connections, first_line, missing_grant

logger = logging.getLogger(__name__)


class ForwardedProtoMiddleware:
    """X-Forwarded-Proto is believed only from a trusted proxy (TRUSTED_PROXIES), as
    X-Forwarded-For is: a client that reaches the server's port directly, skipping the TLS
    proxy, cannot make a plain-HTTP request pass for HTTPS (and so be sent Secure cookies,
    skip the HTTPS redirect, or be recorded as having come over TLS)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        header = (getattr(settings, "SECURE_PROXY_SSL_HEADER", None) or (None,))[0]
        if header and header in request.META and not from_trusted_proxy(request):
            del request.META[header]
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ValidationError):
            # A malformed id handed to a lookup by a view we do not own (the admin's
            # "view on site" shortcut with a non-UUID id, say): bad input, not a crash.
            return bad_request(request, exception)
        if isinstance(exception, (ValueError, OverflowError, DataError)) and _is_admin_changelist(request):
            # A filter value the database cannot take, met only when the list is counted
            # (`?created_at__year=99999` on any admin list): Django validates lookups when
            # they are built, not this. Answer as the admin does for a bad lookup.
            logger.warning("unusable list filter on %s: %s", request.path, first_line(exception))
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        if isinstance(exception, DatabaseError) and not isinstance(exception, (OperationalError, InterfaceError)):
            return _missing_privilege_page(request, exception)
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        # One line, no traceback: the message names the host at most, never a password.
        logger.error("database unavailable: %s", first_line(exception))
        # Drop the broken connection now, so the next request opens a fresh one.
        drop_connections()
        response = TemplateResponse(request, "provisioning/database_unavailable.html", _page_context(), status=503)
        response["Retry-After"] = "10"
        return response.render()


def _missing_privilege_page(request, exception):
    """For "permission denied for table X": a 503 page with the error's first line and, for
    staff, the GRANT to run (the log always names it). None for any other database error."""
    grant = missing_grant(exception)
    if not grant:
        return None
    logger.error("missing privilege: %s; as postgres, run: %s", first_line(exception), grant)
    try:
        staff = bool(request.user.is_staff)
    except DatabaseError:  # the session or user tables may be what the role cannot read
        staff = False
    context = {**_page_context(), "problem": first_line(exception), "grant": grant if staff else ""}
    return TemplateResponse(request, "provisioning/missing_privilege.html", context, status=503).render()


def _page_context() -> dict:
    """The admin's titles without `admin.site.each_context`, which reads the database."""
    from django.contrib import admin

    return {
        "title": "Database unavailable",
        "site_header": admin.site.site_header,
        "site_title": admin.site.site_title,
        "site_url": admin.site.site_url,
    }


def _is_admin_changelist(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.namespace == "admin" and (match.url_name or "").endswith("_changelist"))


#: The cookie eloity.js sets to the browser's IANA time zone (`Europe/Berlin`).
TIME_ZONE_COOKIE = "eloity_tz"


class StaffTimeZoneMiddleware:
    """Show times in the staff member's own time zone: the one their browser reports
    (eloity.js keeps it in a cookie), else the site's TIME_ZONE. Only a name the time zone
    database knows is used: the cookie is whatever the client sends."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _known_zone(request.COOKIES.get(TIME_ZONE_COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _known_zone(name: str) -> zoneinfo.ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


class SpecProblemMiddleware:
    """While the spec file cannot be used, every staff page but the health page (and
    signing in and out) leads there: it says what is wrong, where any other page would
    fail on a spec with no tables."""

    ALLOWED = {"provisioning-health", "login", "logout", "jsi18n", "password_change", "password_change_done"}

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        from provisioning import spec

        if not spec.SPEC_ERROR:
            return None
        match = request.resolver_match
        if match is None or match.url_name in self.ALLOWED or not request.path.startswith("/admin/"):
            return None
        return HttpResponseRedirect(reverse("provisioning-health"))
