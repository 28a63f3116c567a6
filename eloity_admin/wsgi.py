"""WSGI entry point: `gunicorn eloity_admin.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eloity_admin.settings")
application = get_wsgi_application()
