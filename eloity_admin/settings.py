"""Settings for eloity-admin, read from the environment (django-environ).

DEBUG is off unless DEBUG=1; with DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be set.
`make run` writes a development .env (DEBUG=1) that is read only when the environment sets
none of DEBUG, SECRET_KEY and ALLOWED_HOSTS.
With no DATABASE_URL and DEBUG on, an embedded PostgreSQL (pgserver) under .data/ is used.
A malformed value stops the process with one line naming the variable (eloity_admin/environment.py).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from eloity_admin import environment

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

#: What `make run` and `make demo` write (git-ignored) so that `python manage.py ...` works
#: by hand in the checkout: DEBUG=1 and this marker line.
DEVELOPMENT_DOTENV_MARKER = "ELOITY_DEVELOPMENT_ONLY=1"


def _read_development_dotenv(path: Path) -> None:
    """Read the development .env, and nothing else: only a file carrying the marker, and
    only while the environment sets none of DEBUG, SECRET_KEY and ALLOWED_HOSTS. A
    production process sets them, so a .env left in its checkout is never read."""
    if any(name in os.environ for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")):
        return
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return
    if DEVELOPMENT_DOTENV_MARKER in (line.strip() for line in lines):
        environ.Env.read_env(path, overwrite=False)


# ELOITY_DOTENV: another file than the checkout's .env (the tests give one that is absent).
_read_development_dotenv(Path(os.environ.get("ELOITY_DOTENV") or BASE_DIR / ".env"))

DEBUG = environment.boolean("DEBUG", default=False)

if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="insecure-development-key-only-for-debug-mode")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
else:
    SECRET_KEY = env("SECRET_KEY", default="")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    if not SECRET_KEY or not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "With DEBUG off, SECRET_KEY and ALLOWED_HOSTS must be set in the environment "
            "(or set DEBUG=1 for local development)."
        )
    # Sessions and CSRF tokens are signed with it: a guessable key lets anyone forge a
    # staff session. Same bar as `check --deploy` (security.W009).
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
        raise ImproperlyConfigured(
            "SECRET_KEY is too weak for DEBUG off: use at least 50 random characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )

INSTALLED_APPS = [
    # Django's admin with the dashboard's own AdminSite (its home page): provisioning/web/site.py.
    "provisioning.web.site.SupportAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    # Before django_tasks_db: its `db_worker` command is replaced by ours, which outlives
    # a database restart (provisioning/management/commands/db_worker.py).
    "provisioning.apps.ProvisioningConfig",
    # Background jobs: Django's tasks API (backport) with a database-backed queue, so a
    # bulk run needs no extra server; `manage.py db_worker` runs them.
    "django_tasks",
    "django_tasks_db",
    # Throttles repeated failed sign-ins; its tables live beside Django's (eloity_admin schema).
    "axes",
]

MIDDLEWARE = [
    # First: drops X-Forwarded-Proto unless a trusted proxy sent the request.
    "provisioning.web.middleware.ForwardedProtoMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "provisioning.web.middleware.DatabaseUnavailableMiddleware",
    "provisioning.web.middleware.StaffTimeZoneMiddleware",
    "provisioning.web.middleware.SpecProblemMiddleware",
    # Last, as django-axes requires: turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "eloity_admin.urls"
WSGI_APPLICATION = "eloity_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The dashboard's template tags live with its pages, in provisioning/web/.
            "libraries": {
                "eloity": "provisioning.web.templatetags.eloity",
                "audit_events": "provisioning.web.templatetags.audit_events",
            },
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Django's own tables (auth, sessions, admin log, the audit log) live in a schema of their
# own: everything in `public` is reachable through Supabase's Data API.
DJANGO_SCHEMA = env("DJANGO_SCHEMA", default="eloity_admin")
if not DJANGO_SCHEMA.replace("_", "").isalnum() or DJANGO_SCHEMA in {"public", "auth"}:
    raise ImproperlyConfigured("DJANGO_SCHEMA must be a plain identifier other than 'public' or 'auth'.")

if env("DATABASE_URL", default=""):
    EMBEDDED_DATABASE = False
    _default_db = environment.postgres_url("DATABASE_URL")
elif not DEBUG and not environment.boolean("EMBEDDED_DATABASE"):
    # Checked before the embedded server starts: a production process that forgot its
    # database must not start a PostgreSQL of its own (and then fail on a missing auth.users).
    # The test suite and the benchmark opt in (eloity_admin/settings_test.py).
    raise ImproperlyConfigured(
        "With DEBUG off, DATABASE_URL must be set (postgres://user:password@host:5432/dbname); "
        "the embedded PostgreSQL is for local development (DEBUG=1)."
    )
else:
    from eloity_admin import embedded

    EMBEDDED_DATABASE = True
    _default_db = embedded.start(BASE_DIR / ".data")

_default_db.setdefault("OPTIONS", {})
# search_path holds only our schema: unmanaged models name their schema explicitly.
_default_db["OPTIONS"]["options"] = f"-c search_path={DJANGO_SCHEMA}"
_default_db["CONN_MAX_AGE"] = environment.integer("CONN_MAX_AGE", default=0)
_default_db["CONN_HEALTH_CHECKS"] = True
# Supabase's transaction pooler (port 6543) cannot hold server-side cursors.
_default_db["DISABLE_SERVER_SIDE_CURSORS"] = environment.boolean("DISABLE_SERVER_SIDE_CURSORS", default=False)
_default_db["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_eloity_admin")}
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Provisioning ---------------------------------------------------------------------
PROVISIONING_BATCH_SIZE = environment.integer("PROVISIONING_BATCH_SIZE", default=50_000, minimum=1)
# The two-person rule (docs/approvals.md): orphan removal, and "provision all missing" or
# "sync all drifted" for more than APPROVAL_THRESHOLD_USERS users, become a request another
# staff member holding the same permission approves. APPROVALS=off: a one-person team,
# everything runs at once (the health page says so). A request expires after APPROVAL_TTL.
APPROVALS = environment.boolean("APPROVALS", default=True)
APPROVAL_TTL = environment.duration("APPROVAL_TTL", default="24h", minimum_seconds=60)
APPROVAL_THRESHOLD_USERS = environment.integer("APPROVAL_THRESHOLD_USERS", default=1000)
# The sign-up webhook (POST /hooks/signup/): off unless one of these is set. A Database
# Webhook sends `Authorization: Bearer <SIGNUP_WEBHOOK_SECRET>`; a Standard Webhooks sender
# (Supabase's HTTP Auth Hooks) signs with SIGNUP_WEBHOOK_STANDARD_SECRET (`v1,whsec_...`).
SIGNUP_WEBHOOK_SECRET = env("SIGNUP_WEBHOOK_SECRET", default="")
SIGNUP_WEBHOOK_STANDARD_SECRET = env("SIGNUP_WEBHOOK_STANDARD_SECRET", default="")
# The watchdog's alerts (manage.py provisioning_watchdog): email through Django's mail
# settings (EMAIL_URL) and/or a Slack-compatible JSON POST; with neither, the log.
WATCHDOG_EMAIL_TO = env.list("WATCHDOG_EMAIL_TO", default=[])
WATCHDOG_WEBHOOK_URL = env("WATCHDOG_WEBHOOK_URL", default="")
vars().update(environment.email_url("EMAIL_URL", default="consolemail://"))
# GET /metrics (Prometheus): off unless a bearer token or an address allowlist is set.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = environment.addresses("METRICS_ALLOWED_IPS")
METRICS_CACHE_SECONDS = environment.integer("METRICS_CACHE_SECONDS", default=30)
# What a provisioned user gets: a TOML spec file (docs/spec-file.md). Empty: Eloity's
# default, provisioning/spec/eloity.toml.
PROVISIONING_SPEC = env("PROVISIONING_SPEC", default="")
# Fixing accounts through Supabase Auth's admin API (docs/fixing-accounts.md). Without the
# URL and the service-role key, the account actions show as unavailable (a `check` warning
# says so with DEBUG off); the anon key is for the e-mails a user receives (/resend, /recover).
# The keys are never rendered, logged or recorded.
SUPABASE_URL = env("SUPABASE_URL", default="")
SUPABASE_SERVICE_ROLE_KEY = env("SUPABASE_SERVICE_ROLE_KEY", default="")
SUPABASE_ANON_KEY = env("SUPABASE_ANON_KEY", default="")
SUPABASE_TIMEOUT_SECONDS = environment.integer("SUPABASE_TIMEOUT_SECONDS", default=10, minimum=1)
# How long an access token lives (the project's JWT expiry, Auth's GOTRUE_JWT_EXP): a ban
# cannot end the tokens already issued, so the page says how long they still work.
JWT_EXPIRY_SECONDS = environment.integer("JWT_EXPIRY_SECONDS", default=3600, minimum=1)
# The bulk action's confirmation page posts one field per selected user (up to 10,000).
DATA_UPLOAD_MAX_NUMBER_FIELDS = 11_000

# Background jobs live in the database (no broker): any number of web instances enqueue,
# any number of `manage.py db_worker` processes run them.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = environment.time_zone("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# One date format everywhere (eloity_admin/formats/en/formats.py); times are shown in the
# staff member's time zone (their browser's, see StaffTimeZoneMiddleware), UTC on hover.
FORMAT_MODULE_PATH = ["eloity_admin.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# With DEBUG on, files are served straight from the app folders. With DEBUG off, from
# `collectstatic`'s output with hashed names (a documented deploy step). The choice never
# depends on whether STATIC_ROOT happens to exist: that made the first `collectstatic`
# write no manifest, and every page a 500 afterwards.
WHITENOISE_USE_FINDERS = DEBUG
if DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"

LOGIN_URL = "admin:login"
# Where a sign-in lands when its ?next= is missing or unsafe (another host).
LOGIN_REDIRECT_URL = "admin:index"

# --- Sign-in throttling (django-axes): failures counted in the database, so every web
# instance sees the same count. Locked per account *and* address: one address cannot
# guess one account's password, and an attacker cannot lock staff out from elsewhere.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = environment.integer("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=environment.integer("AXES_COOLOFF_MINUTES", default=15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address behind the trusted proxies: the same one the audit log records.
AXES_CLIENT_IP_CALLABLE = "provisioning.actors.client_address"
AXES_USERNAME_CALLABLE = "provisioning.audit.access.throttle_username"
# The lockout page in the admin's look, saying when to try again (templates/provisioning/).
AXES_LOCKOUT_TEMPLATE = "provisioning/locked_out.html"
# Our own audit log records sign-ins; axes' per-success log would only duplicate it.
AXES_DISABLE_ACCESS_LOG = True

# --- Security (production values come from the environment; see README) --------------
# X-Forwarded-For is read only from the proxies listed in TRUSTED_PROXIES (addresses or
# CIDR ranges: the load balancer, a CDN's ranges), at most TRUSTED_PROXY_COUNT steps (the
# number of proxies in front; 1 when only TRUSTED_PROXIES is set). A client that reaches the
# server without a proxy is its REMOTE_ADDR, whatever header it sends (provisioning/actors.py).
TRUSTED_PROXIES = environment.networks("TRUSTED_PROXIES")
TRUSTED_PROXY_COUNT = environment.integer("TRUSTED_PROXY_COUNT", default=1 if TRUSTED_PROXIES else 0)
if TRUSTED_PROXY_COUNT and not TRUSTED_PROXIES:
    # Refused rather than ignored: running on would record every client as the proxy, and
    # let five wrong passwords from anywhere lock a staff account for everyone.
    raise ImproperlyConfigured(
        f"TRUSTED_PROXY_COUNT={TRUSTED_PROXY_COUNT} needs TRUSTED_PROXIES, the proxies' addresses or CIDR "
        "ranges (e.g. TRUSTED_PROXIES=127.0.0.1): X-Forwarded-For is read only from them."
    )
# X-Forwarded-Proto too is read only from TRUSTED_PROXIES: a client that reaches the server's
# port directly cannot claim HTTPS (provisioning.web.middleware.ForwardedProtoMiddleware).
BEHIND_TLS_PROXY = environment.boolean("BEHIND_TLS_PROXY", default=False)
if BEHIND_TLS_PROXY and not TRUSTED_PROXIES:
    raise ImproperlyConfigured(
        "BEHIND_TLS_PROXY=1 needs TRUSTED_PROXIES, the TLS proxies' addresses or CIDR ranges "
        "(e.g. TRUSTED_PROXIES=127.0.0.1): X-Forwarded-Proto is read only from them."
    )
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_SSL_REDIRECT = environment.boolean("SECURE_SSL_REDIRECT", default=False)
# A load balancer's health probe comes over plain HTTP and must see the answer, not a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = environment.boolean("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = environment.integer("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = environment.boolean("SECURE_HSTS_PRELOAD", default=False)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HSTS preload commits the whole domain (and its subdomains) to browsers' built-in lists:
# that is the domain owner's decision, made with SECURE_HSTS_PRELOAD=1, not this app's.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD or not SECURE_HSTS_SECONDS else ["security.W021"]

# Content-Security-Policy (django-csp; Django's own SECURE_CSP needs 6.0): a second layer
# behind escaping. Scripts only from our own static files (no inline script, no eval);
# the job page polls its status with fetch() to the same origin. Inline style attributes
# stay allowed: the admin's own templates and widgets set a few.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

LOG_LEVEL = environment.log_level("LOG_LEVEL", default="WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"one_line_refusals": {"()": "provisioning.web.request_log.OneLineRefusals"}},
    "formatters": {
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"}
    },
    "handlers": {
        # A refused request (403, 400) is one line with its reason, not a traceback: on the
        # handler, so that it holds for every logger (django.request, django.security.*).
        "console": {"class": "logging.StreamHandler", "filters": ["one_line_refusals"]},
        "django.server": {"level": "INFO", "class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own console handler (DEBUG on) printed each record a second time beside
        # the root's: records of `django` reach the console once, through the root.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        # runserver's request lines, as Django's default configuration prints them.
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
