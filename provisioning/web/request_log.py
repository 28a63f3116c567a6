"""What the console says about a refused request: one line, never a traceback.

Django logs every 4xx that came from an exception (PermissionDenied, a CSRF failure, a
SuspiciousOperation) on `django.request` with the exception's traceback attached. A refusal
is the app working as meant: the line says the path and the reason, and nothing more.
Server errors (5xx) keep their traceback.
"""

from __future__ import annotations

import logging


class OneLineRefusals(logging.Filter):
    """On the console handler: a 4xx record (django.request, django.security.*) loses its
    traceback and gains the exception's message where it lacks it ("Forbidden (Permission
    denied): /path: You do not have permission to ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and status is not None and status < 500:
            reason = str(record.exc_info[1] or "")
            if reason and reason not in record.getMessage():  # django.security's message is the reason
                record.msg = f"{record.msg}: {reason.replace('%', '%%')}"
            record.exc_info = None
            record.exc_text = None
        return True
