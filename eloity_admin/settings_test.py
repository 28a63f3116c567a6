"""Settings for the test suite: production settings (DEBUG off) with test-only secrets."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-outside-the-test-suite-0123456789")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# DEBUG off without DATABASE_URL: the embedded PostgreSQL, which production settings refuse.
os.environ.setdefault("EMBEDDED_DATABASE", "1")

from eloity_admin.settings import *  # noqa: F403

# Tests render pages without running collectstatic: serve files from the app folders.
# (The production path test runs gunicorn on the real settings after collectstatic.)
WHITENOISE_USE_FINDERS = True
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
