"""`GET /healthz` for a load balancer: does the database answer? No login, no details."""

from __future__ import annotations

from django.db import Error, connection
from django.http import HttpResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@never_cache
@require_safe
def healthz(request):
    """200 `ok` when `SELECT 1` answers, else 503 `unavailable`. The body never says why:
    an outsider learns nothing about the database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Error:
        # Drop the broken connection so the next probe opens a fresh one.
        connection.close_if_unusable_or_obsolete()
        return HttpResponse("unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok\n", content_type="text/plain")


urlpatterns = [path("healthz", healthz, name="healthz")]
