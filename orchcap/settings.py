"""orchcap settings: everything comes from environment variables (see docs/operations.md).

With DATABASE_URL / CELERY_BROKER_URL unset, orchcap uses its embedded PostgreSQL + pgvector and
Valkey broker under ORCHCAP_DATA_DIR (default: var/); they start on first use.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from orchcap.env import env_bool, env_choice, env_int, env_list, env_str, env_url
from orchcap.runtime import paths
from orchcap.runtime.broker import broker_url as embedded_broker_url
from orchcap.runtime.postgres import DATABASE as EMBEDDED_DATABASE
from orchcap.runtime.postgres import PORT as EMBEDDED_PG_PORT
from orchcap.runtime.postgres import SUPERUSER as EMBEDDED_PG_USER

BASE_DIR = paths.BASE_DIR
DATA_DIR: Path = paths.data_dir()

DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Local mode: one random key, generated on first start and kept, so sessions survive restarts.
    key_file = DATA_DIR / "secret_key"
    paths.ensure_writable_dir(DATA_DIR)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (or an earlier start) made it
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# htmx requests learn that their token is stale (and fetch a new one) instead of failing silently.
CSRF_FAILURE_VIEW = "apps.core.session.csrf_failure"

INSTALLED_APPS = [
    "apps.people.admin_site.OrgAdminConfig",  # django.contrib.admin, for superusers only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",
    "django_celery_beat",
    "ninja",
    "apps.core",
    "apps.people",
    "apps.notifications",
    "apps.cases",
    "apps.rules",
    "apps.classifiers",
    "apps.autonomy",
    "apps.fabric",
    "apps.connectors",
    "apps.orchestrations",
    "apps.capital",
    "apps.skills",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # The common node heartbeat in one read, before sessions, CSRF and the API (docs/fabric.md)
    "apps.fabric.middleware.HeartbeatFastPathMiddleware",
    "apps.core.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # JSON errors under /api/; oversized bodies refused and NUL characters removed on pages
    "apps.core.middleware.ApiErrorsMiddleware",
    "apps.core.middleware.FormGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Says which fields FormGuardMiddleware removed a NUL character from (a message or a toast).
    "apps.core.middleware.NulNoticeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # An htmx request without a session gets 401, not the login page inside a fragment.
    "apps.core.session.HtmxLoginRequiredMiddleware",
    # Last: turns a login refused by the throttle into the login page with its message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "orchcap.urls"
WSGI_APPLICATION = "orchcap.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.people.context_processors.navigation",
                "apps.notifications.context_processors.bell",
            ],
            "builtins": [
                "template_partials.templatetags.partials",
                "apps.core.templatetags.orchcap_display",
            ],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        "django.template.loaders.filesystem.Loader",
                        "django.template.loaders.app_directories.Loader",
                    ],
                )
            ],
        },
    }
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", ("postgres", "postgresql", "pgsql"))
EMBEDDED_DATABASE_ENABLED = DATABASE_URL is None
if DATABASE_URL:
    _db = dj_database_url.parse(
        DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0)
    )
else:
    _db = {
        "NAME": EMBEDDED_DATABASE,
        "USER": EMBEDDED_PG_USER,
        "PASSWORD": "",
        "HOST": str(paths.pg_socket_dir(DATA_DIR)),
        "PORT": str(EMBEDDED_PG_PORT),
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        # Read by orchcap.runtime.pg_backend: start the embedded server on first connection.
        "EMBEDDED_DATA_DIR": str(DATA_DIR),
    }
# Precedent search: HNSW candidates per query (recall vs. speed, see bench/) and iterative scans,
# so filtering by process and status still yields k neighbours when few rows match.
ORCHCAP_HNSW_EF_SEARCH = env_int("ORCHCAP_HNSW_EF_SEARCH", 200, minimum=10, maximum=1000)
# Below this closeness (percent) a decided case is no precedent: "no close precedent" instead.
ORCHCAP_PRECEDENT_MIN_SIMILARITY = env_int(
    "ORCHCAP_PRECEDENT_MIN_SIMILARITY", 70, minimum=0, maximum=100
)
_db.setdefault("OPTIONS", {})
_db["OPTIONS"]["options"] = (
    _db["OPTIONS"].get("options", "")
    + f" -c hnsw.ef_search={ORCHCAP_HNSW_EF_SEARCH} -c hnsw.iterative_scan=relaxed_order"
).strip()
# Our backend is PostgreSQL's plus a pgvector check on first connection (and the embedded start).
_db["ENGINE"] = "orchcap.runtime.pg_backend"
_db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- broker / Celery --------------------------------------------------------------------------
_broker = env_url(
    "CELERY_BROKER_URL", ("redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp")
)
EMBEDDED_BROKER_ENABLED = _broker is None
CELERY_BROKER_URL = _broker or embedded_broker_url(DATA_DIR)
CELERY_RESULT_BACKEND = None  # results live in our own tables; the broker only carries work
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
}
CELERY_TASK_DEFAULT_QUEUE = "orchcap"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "embed-missing-cases": {"task": "apps.cases.tasks.embed_missing_cases", "schedule": 300.0},
    "discard-abandoned-uploads": {
        "task": "apps.cases.tasks.discard_abandoned_uploads",
        "schedule": 3600.0,
    },
    # Active learning: open cases without an uncertainty, or scored by a demoted model.
    "refresh-uncertainty": {
        "task": "apps.classifiers.tasks.refresh_uncertainty",
        "schedule": 600.0,
    },
    # Orchestrations: expert decisions on runs' cases that a lost signal kept from their trace.
    "orchestrations-catch-up-decisions": {
        "task": "apps.orchestrations.tasks_events.catch_up_decisions_task",
        "schedule": 300.0,
    },
    # Skills: everyone's evidence measured again; levels granted and lost to match.
    "refresh-skills": {"task": "apps.skills.tasks.refresh_skills", "schedule": 3600.0},
}
CELERY_WORKER_CONCURRENCY = env_int("ORCHCAP_WORKER_CONCURRENCY", 2, minimum=1, maximum=256)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("ORCHCAP_TEST_FAST_HASHING", False):
    # Set by the test plugin only: the suite creates hundreds of users, and a deliberately slow
    # hash there costs minutes and protects nothing.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Login throttling (django-axes): failed logins are counted per username and, separately, per
# client address; either reaching the limit refuses logins (even with the right password) until
# the cool-off has passed since the last failure, or an admin unlocks (docs/operations.md).
AXES_FAILURE_LIMIT = env_int("ORCHCAP_LOGIN_FAILURE_LIMIT", 10, minimum=1, maximum=1000)
ORCHCAP_LOGIN_COOLOFF_MINUTES = env_int(
    "ORCHCAP_LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=7 * 24 * 60
)
AXES_COOLOFF_TIME = timedelta(minutes=ORCHCAP_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# Attempts made while locked out don't extend the lock: "try again in N minutes" stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.people.views.login_locked_out"
AXES_VERBOSE = False  # no banner on every start (commands keep stderr to one line)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- i18n / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- static -----------------------------------------------------------------------------------
STATIC_URL = "/static/"
# Debug mode serves from the source tree (finders); production serves what collectstatic gathered.
STATIC_ROOT = None if DEBUG else Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": DATA_DIR / "media"},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# --- orchcap ----------------------------------------------------------------------------------
ORCHCAP_API_TOKEN_PREFIX = "oc_"  # noqa: S105 (a visible prefix, not a secret)
ORCHCAP_EMBEDDINGS = env_str("ORCHCAP_EMBEDDINGS", "hashing")
ORCHCAP_CHAT_MODEL = env_str("ORCHCAP_CHAT_MODEL", "")  # rule drafts; "" = off
ORCHCAP_UNDO_SECONDS = env_int("ORCHCAP_UNDO_SECONDS", 120, minimum=0, maximum=3600)
ORCHCAP_UPLOAD_MAX_BYTES = env_int("ORCHCAP_UPLOAD_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
ORCHCAP_UPLOAD_INLINE_BYTES = env_int("ORCHCAP_UPLOAD_INLINE_BYTES", 256 * 1024, minimum=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 64 * 1024 * 1024, minimum=1024)
ORCHCAP_HEALTH_WORKER_TIMEOUT = env_int("ORCHCAP_HEALTH_WORKER_TIMEOUT", 2, minimum=1, maximum=30)
# Fabric: how often node agents heartbeat (the heartbeat reply tells them); a node silent for 3
# intervals is marked offline. 5 s keeps failover under 20 s (3 x 5 s + a 4 s sweep) at about
# 200 heartbeats/s for 1,000 nodes (docs/fabric.md, "Failover").
ORCHCAP_HEARTBEAT_SECONDS = env_int("ORCHCAP_HEARTBEAT_SECONDS", 5, minimum=1, maximum=3600)
# The common heartbeat answered with one read ahead of the middleware stack (apps/fabric/
# middleware.py); off sends every heartbeat through the API (for comparison, or to rule it out).
ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH = env_bool("ORCHCAP_FABRIC_HEARTBEAT_FAST_PATH", True)
# Its figures are written in one UPDATE per web process this often (0: at each heartbeat);
# always within one heartbeat interval.
ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS = env_int(
    "ORCHCAP_FABRIC_HEARTBEAT_FLUSH_SECONDS",
    min(1, ORCHCAP_HEARTBEAT_SECONDS - 1),
    minimum=0,
    maximum=ORCHCAP_HEARTBEAT_SECONDS - 1,
)
# The sweeper (lost nodes, expired leases, consumption probes) runs at least every 4 s so that a
# dead node's work runs elsewhere within 3 heartbeat intervals + 5 s.
ORCHCAP_FABRIC_SWEEP_SECONDS = env_int(
    "ORCHCAP_FABRIC_SWEEP_SECONDS", min(ORCHCAP_HEARTBEAT_SECONDS, 4), minimum=1, maximum=3600
)
CELERY_BEAT_SCHEDULE["fabric-mark-lost-nodes"] = {
    "task": "apps.fabric.tasks.mark_lost_nodes",
    "schedule": float(ORCHCAP_FABRIC_SWEEP_SECONDS),
}
# Pending tasks are placed when a node frees a slot or comes online; this catches the rest
# (an availability window that opens, a capacity change).
ORCHCAP_FABRIC_SCHEDULE_SECONDS = env_int(
    "ORCHCAP_FABRIC_SCHEDULE_SECONDS", 5, minimum=1, maximum=3600
)
CELERY_BEAT_SCHEDULE["fabric-schedule-pending"] = {
    "task": "apps.fabric.tasks.schedule_pending_tasks",
    "schedule": float(ORCHCAP_FABRIC_SCHEDULE_SECONDS),
}
# The broker nodes consume from (handed to approved agents); the control plane publishes node
# work there. Defaults to the control plane's own broker.
ORCHCAP_NODE_BROKER_URL = (
    env_url(
        "ORCHCAP_NODE_BROKER_URL", ("redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp")
    )
    or CELERY_BROKER_URL
)
# The control plane's worker enrols itself as fabric node `local` and runs payloads in-process.
ORCHCAP_LOCAL_NODE = env_bool("ORCHCAP_LOCAL_NODE", True)
# Completion handlers of finished fabric work run when results arrive; this catches the rest.
CELERY_BEAT_SCHEDULE["fabric-handle-finished"] = {
    "task": "apps.fabric.tasks.handle_finished_tasks",
    "schedule": 15.0,
}
# Background jobs recorded in the database (training, imports) are an outbox: the sweeper sends
# again a job no worker picked up within ORCHCAP_JOB_PICKUP_SECONDS (e.g. the broker was down), and
# a job queued, or claimed but silent, for ORCHCAP_JOB_STALE_SECONDS is stale: it no longer blocks
# a new one, and a lost run is redone (up to ORCHCAP_JOB_MAX_LOST_RUNS times) or failed.
ORCHCAP_JOB_SWEEP_SECONDS = env_int("ORCHCAP_JOB_SWEEP_SECONDS", 30, minimum=1, maximum=3600)
ORCHCAP_JOB_PICKUP_SECONDS = env_int("ORCHCAP_JOB_PICKUP_SECONDS", 120, minimum=1, maximum=86400)
ORCHCAP_JOB_STALE_SECONDS = env_int("ORCHCAP_JOB_STALE_SECONDS", 900, minimum=60, maximum=604800)
ORCHCAP_JOB_MAX_LOST_RUNS = env_int("ORCHCAP_JOB_MAX_LOST_RUNS", 3, minimum=0, maximum=100)
CELERY_BEAT_SCHEDULE["sweep-jobs"] = {
    "task": "apps.core.tasks.sweep_jobs",
    "schedule": float(ORCHCAP_JOB_SWEEP_SECONDS),
}
# Where classifier training and batch prediction may run: fabric requirements as JSON, e.g.
# {"labels": {"site": "hq"}} to keep case data on that site's machines. Empty: any node.
ORCHCAP_LEARNING_REQUIREMENTS = env_str("ORCHCAP_LEARNING_REQUIREMENTS", "")
ORCHCAP_FABRIC_MAX_ATTEMPTS = env_int("ORCHCAP_FABRIC_MAX_ATTEMPTS", 5, minimum=1, maximum=100)
# A node that ran nothing for this long gets a 0-second probe: one that heartbeats but doesn't
# take it within a lease is flagged "not consuming" and gets no work.
ORCHCAP_FABRIC_PROBE_SECONDS = env_int(
    "ORCHCAP_FABRIC_PROBE_SECONDS", 300, minimum=1, maximum=7 * 24 * 3600
)
ORCHCAP_FABRIC_RESULT_MAX_BYTES = env_int(
    "ORCHCAP_FABRIC_RESULT_MAX_BYTES", 1024 * 1024, minimum=1024
)
ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES = env_int(
    "ORCHCAP_FABRIC_ARTIFACT_MAX_BYTES", 512 * 1024 * 1024, minimum=1024
)
# GET /metrics: with a token, Prometheus sends `Authorization: Bearer <token>`; without one the
# endpoint is open while DEBUG is on and refused (403) when it is off.
ORCHCAP_METRICS_TOKEN = env_str("ORCHCAP_METRICS_TOKEN", "")

# Outbound webhooks (apps/connectors, docs/connectors.md). Delays after each failed attempt, in
# seconds (Standard Webhooks: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, about 3 days), then dead.
_retry_schedule = env_list(
    "ORCHCAP_WEBHOOK_RETRY_SCHEDULE", ["5", "300", "1800", "7200", "18000", "36000", "36000"]
)
if not all(seconds.isdigit() for seconds in _retry_schedule):
    raise ImproperlyConfigured(
        "ORCHCAP_WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, "
        f"got {','.join(_retry_schedule)!r}"
    )
ORCHCAP_WEBHOOK_RETRY_SCHEDULE = [int(seconds) for seconds in _retry_schedule]
# An endpoint failing (every attempt and probe) for this long is disabled and its owner told.
ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS = env_int(
    "ORCHCAP_WEBHOOK_DISABLE_AFTER_HOURS", 120, minimum=1, maximum=24 * 365
)
# An endpoint with a backlog waiting for a retry gets a light probe this often; when it answers,
# the backlog goes at once. 10 s (plus the 5 s sweep) keeps a backlog well within 30 s of a
# return (20 s measured 18-24 s after a 60 s outage, too close on a loaded machine).
ORCHCAP_WEBHOOK_PROBE_SECONDS = env_int(
    "ORCHCAP_WEBHOOK_PROBE_SECONDS", 10, minimum=1, maximum=3600
)
ORCHCAP_WEBHOOK_SWEEP_SECONDS = env_int("ORCHCAP_WEBHOOK_SWEEP_SECONDS", 5, minimum=1, maximum=3600)
ORCHCAP_WEBHOOK_TIMEOUT_SECONDS = env_int(
    "ORCHCAP_WEBHOOK_TIMEOUT_SECONDS", 15, minimum=1, maximum=120
)
# How long a rotated-out secret keeps signing (both signatures are sent meanwhile).
ORCHCAP_WEBHOOK_SECRET_OVERLAP_HOURS = env_int(
    "ORCHCAP_WEBHOOK_SECRET_OVERLAP_HOURS", 24, minimum=0, maximum=24 * 30
)
# Hosts (names, addresses or networks like 10.1.0.0/16) webhooks may reach although private,
# loopback or link-local (SSRF protection); empty: public addresses only. With DEBUG on, 127.0.0.1
# by default: the demo's simulated source system (manage.py simulate_source) listens there.
ORCHCAP_WEBHOOK_ALLOWED_HOSTS = env_list(
    "ORCHCAP_WEBHOOK_ALLOWED_HOSTS", ["127.0.0.1"] if DEBUG else []
)
CELERY_BEAT_SCHEDULE["connectors-sweep"] = {
    "task": "apps.connectors.tasks.sweep_connectors",
    "schedule": float(ORCHCAP_WEBHOOK_SWEEP_SECONDS),
}
# Orchestration runs (apps/orchestrations/execution.py): an unfinished run that nothing evaluates
# (never dispatched, its request died, its fabric task failed) is sent to the fabric again by the
# sweeper once it is ORCHCAP_RUN_PICKUP_SECONDS old, up to ORCHCAP_RUN_MAX_DISPATCHES times.
ORCHCAP_RUN_SWEEP_SECONDS = env_int("ORCHCAP_RUN_SWEEP_SECONDS", 5, minimum=1, maximum=3600)
ORCHCAP_RUN_PICKUP_SECONDS = env_int("ORCHCAP_RUN_PICKUP_SECONDS", 10, minimum=0, maximum=86400)
ORCHCAP_RUN_MAX_DISPATCHES = env_int("ORCHCAP_RUN_MAX_DISPATCHES", 5, minimum=1, maximum=100)
CELERY_BEAT_SCHEDULE["orchestrations-sweep-runs"] = {
    "task": "apps.orchestrations.tasks.sweep_runs",
    "schedule": float(ORCHCAP_RUN_SWEEP_SECONDS),
}
# Capital (apps/capital/snapshots.py): today's daily snapshot rewritten every
# ORCHCAP_CAPITAL_SNAPSHOT_SECONDS, yesterday's made final; a node takes part in the fabric when
# online at least ORCHCAP_CAPITAL_ONLINE_HOURS in the last 7 days.
ORCHCAP_CAPITAL_SNAPSHOT_SECONDS = env_int(
    "ORCHCAP_CAPITAL_SNAPSHOT_SECONDS", 3600, minimum=60, maximum=86400
)
ORCHCAP_CAPITAL_ONLINE_HOURS = env_int("ORCHCAP_CAPITAL_ONLINE_HOURS", 10, minimum=0, maximum=168)
CELERY_BEAT_SCHEDULE["capital-snapshots"] = {
    "task": "apps.capital.tasks.refresh_capital_snapshots",
    "schedule": float(ORCHCAP_CAPITAL_SNAPSHOT_SECONDS),
}
# Notifications by email (apps/notifications, docs/notifications.md): Django's email backend,
# printed to the console by default; the SMTP backend reads the EMAIL_HOST… settings below.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "orchcap@localhost")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL can't both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)
# Where people open orchcap: links in notification emails start with it.
ORCHCAP_BASE_URL = env_str("ORCHCAP_BASE_URL", "http://127.0.0.1:8000")
# SLA escalation (docs/orchestrations.md#sla-and-escalation): overdue routed items are looked
# for this often.
ORCHCAP_SLA_SWEEP_SECONDS = env_int("ORCHCAP_SLA_SWEEP_SECONDS", 60, minimum=5, maximum=3600)
CELERY_BEAT_SCHEDULE["orchestrations-escalate-overdue"] = {
    "task": "apps.orchestrations.tasks_sla.escalate_overdue_task",
    "schedule": float(ORCHCAP_SLA_SWEEP_SECONDS),
}

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # An ordinary 403/404 is logged as a WARNING line, without a traceback.
    "filters": {"no_4xx_traceback": {"()": "apps.core.logs.NoTracebackUnder500"}},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.request": {"filters": ["no_4xx_traceback"]},
    },
}

AUTHENTICATION_BACKENDS = [
    # First: refuses a throttled login before any password is checked.
    "apps.people.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
