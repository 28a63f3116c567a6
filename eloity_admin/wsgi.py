"""WSGI entry point: `gunicorn eloity_admin.wsgi`."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eloity_admin.settings")
try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # One line naming the setting, not a traceback in the server's log.
    sys.stderr.write(f"ImproperlyConfigured: {exc}\n")
    raise SystemExit(2) from None
