"""Turn a lost database connection into a readable 503 page instead of a traceback."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError, connections
from django.template.response import TemplateResponse

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        logger.error(
            "database unavailable: %s", str(exception).strip().splitlines()[0] if str(exception) else exception
        )
        for conn in connections.all(initialized_only=True):
            # Drop the broken connection now, so the next request opens a fresh one.
            conn.close_if_unusable_or_obsolete()
            if conn.connection is not None and not conn.is_usable():
                conn.close()
        response = TemplateResponse(request, "provisioning/database_unavailable.html", status=503)
        response["Retry-After"] = "10"
        return response.render()
